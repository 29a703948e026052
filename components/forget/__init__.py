"""`python -m components forget`: erase a user, an agent or a run from every table the
stack declares, in one transaction, leaving an erasure record with no content
(docs/security.md, "Erasing a person").

The modules, each with one job: `run` (the one transaction: acting as the service role,
calling `mem0_erasure.forget()`, rolling back a dry run), `report` (what is printed, as
text or JSON) and `command` (arguments and exit codes). What each table gives up is the
model's (components/erasure.py); restore's refusal of erased people is
components/backup/erased.py.
"""

from components.forget.command import HELP, add_arguments, command
from components.forget.run import ForgetError, ForgetRequest, ForgetResult, run_forget

__all__ = ["HELP", "ForgetError", "ForgetRequest", "ForgetResult", "add_arguments", "command",
           "run_forget"]
