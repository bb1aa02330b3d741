"""Members: registration, invitations, language, privacy (/mydata, /forget)."""
