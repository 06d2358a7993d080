"""Processing pipeline: metadata → download → chunks → speech-to-text → merge → speakers →
transcript.md / transcript.json, resumable at every step."""
