"""``python -m terminal.users_hash PASSWORD`` prints an scrypt hash for the ``[[users]]`` table of the config."""

import sys

from terminal.users import hash_password

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m terminal.users_hash PASSWORD")
    print(hash_password(sys.argv[1]))
