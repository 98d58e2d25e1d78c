"""The sizes the blog's tables hold, shared by the models and the request schemas (so that the
schemas, needed at start-up for the routes and their documentation, do not import the models)."""

NAME_LENGTH = 80
TITLE_LENGTH = 200
CONTENT_LENGTH = 100_000  # characters; MEDIUMTEXT on MariaDB, whose TEXT holds only 64 KiB
MAX_AGE = 150
MAX_ID = 2**31 - 1  # ids are 32-bit integers on every backend
