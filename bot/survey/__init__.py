"""The survey: question kinds, the survey service and its dialog."""
