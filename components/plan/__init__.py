"""`python -m components plan`: what `up` would do to a live database, for a reviewer
(docs/plan.md).

The modules, each with one job:

    objects.py   declared against live (drift's canonical DDL and readers): which objects
                 to create, change or drop, each with its kind's planner's steps
                 (`KindSpec.planned`, the statements `ensure` runs, hazards as data:
                 components/kinds/steps.py)
    estimate.py  an index build's time: the table's rows and dimensions, the measured
                 rates, the server's current load
    access.py    the access matrix before and after, per table, role and command, and
                 what changes in plain words
    build.py     one `Plan` from a stack's settings and a database (reads only)
    render.py    the plan as text, Markdown (a pull-request comment) and JSON
    command.py   arguments and exit codes
    calibrate.py measures the build rates estimate.py uses (`python -m
                 components.plan.calibrate --dsn URL`)
"""

from components.plan.access import AccessChange, access_changes
from components.plan.build import Plan, PlanError, make_plan
from components.plan.command import HELP, add_arguments, command
from components.plan.objects import Action, ObjectPlan, plan_objects
from components.plan.render import as_json, markdown, text

__all__ = ["HELP", "AccessChange", "Action", "ObjectPlan", "Plan", "PlanError",
           "access_changes", "add_arguments", "as_json", "command", "make_plan", "markdown",
           "plan_objects", "text"]
