#!/usr/bin/env bash
# What `make run` needs from Debian beyond Python and npm: espeak-ng, which speaks the demo
# Space of test mode at the first start. Installed only when missing; never fails the start
# (without it the banner says "Demo Space: off" and why).
set -uo pipefail
command -v espeak-ng >/dev/null 2>&1 && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
echo "installing Debian package espeak-ng (the test-mode demo Space's voices)"
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends espeak-ng >/dev/null; }; then
  echo "could not install espeak-ng: test mode will start without its demo Space" >&2
fi
exit 0
