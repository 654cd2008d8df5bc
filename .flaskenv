# Read by the `flask` command (python-dotenv), not by the service; a variable already in the environment wins.
# `flask ...` from the repository root builds the service's app through app.create_cli_app: the same app, on the
# bundled SP-API emulator (in the command's process) when no credentials and no SP_API_ENDPOINT are set.
FLASK_APP=app:create_cli_app
