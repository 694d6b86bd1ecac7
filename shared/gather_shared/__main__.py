"""`python -m gather_shared admin …`: the operator's toolkit (gather_shared.admin), also installed as
`gather-admin`."""

import sys

from gather_shared import admin

if __name__ == "__main__":
    if sys.argv[1:2] != ["admin"]:
        print("usage: python -m gather_shared admin <command> ... (python -m gather_shared admin --help)")
        sys.exit(admin.USAGE)
    sys.exit(admin.main(sys.argv[2:], prog="python -m gather_shared admin"))
