"""ComponentResources: the model's specs as Pulumi resources.

`Mem0Backend` is the top level; it owns one child component per object family
(type tokens `mem0:index:<Class>`), and each family owns one `SqlObject` per spec. Every
child is parented, so a rename of the top-level component is one alias.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi import dynamic

from components.checks.provider import ChecksProvider, schema_fingerprint
from components.connection import database_identity, embedded_spec, role_url, stack_url
from components.embedded import EmbeddedPostgres
from components.kinds import Family, Kind
from components.model import ObjectSpec, build_model
from components.provider import SqlObjectProvider, object_inputs
from components.settings import Settings, settings_payload


class SqlObject(dynamic.Resource, module="mem0", name="SqlObject"):
    """One SQL object: its canonical DDL is the input a preview diffs line by line."""

    kind: pulumi.Output[str]
    ddl: pulumi.Output[str]
    adopted: pulumi.Output[bool]

    def __init__(self, name: str, spec: ObjectSpec, connection: pulumi.Input[str],
                 database: str, allow_data_loss: bool, password: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        secret_password = pulumi.Output.secret(password) if password else None
        props: dict[str, Any] = {
            **object_inputs(spec, pulumi.Output.secret(connection), database, allow_data_loss,
                            secret_password),
            "adopted": None,  # an output: seeded so the property exists
        }
        super().__init__(SqlObjectProvider(), name, props, opts)


class CheckRun(dynamic.Resource, module="mem0", name="CheckRun"):
    """One run of a check phase (preflight or validate) in `pulumi up`; its `summary`
    output is what the checks found."""

    summary: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, phase: str, settings: Settings, fingerprint: str,
                 connection: pulumi.Input[str], database: str, benchmark: bool = False,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "phase": phase, "connection": pulumi.Output.secret(connection),
            "database": database, "fingerprint": fingerprint,
            "settings": settings_payload(settings), "benchmark": benchmark,
            "poolerUrl": pulumi.Output.secret(settings.pooler_url)
            if settings.pooler_url else None,
            # For the tls check's session as the app role (a credential: no rerun).
            "appRolePassword": pulumi.Output.secret(settings.app_role_password)
            if settings.app_role_password else None,
            "summary": None,  # an output: seeded so the property exists
        }
        super().__init__(ChecksProvider(), name, props, opts)


class PostDeployChecks(pulumi.ComponentResource):
    """Validation (and the benchmark, where the stack enables it) after every change of
    the schema: depends on every SQL object, fails the deployment when a check fails."""

    def __init__(self, name: str, settings: Settings, fingerprint: str,
                 connection: pulumi.Input[str], database: str, after: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mem0:index:PostDeployChecks", name, None, opts)
        self.run = CheckRun(f"{name}-validate", "validate", settings, fingerprint, connection,
                            database, settings.checks_benchmark,
                            pulumi.ResourceOptions(parent=self, depends_on=after))
        self.summary = self.run.summary
        self.register_outputs({"summary": self.summary})


class _Family(pulumi.ComponentResource):
    """A group of SQL objects of one family; subclasses only name the type token."""

    TYPE = ""

    def __init__(self, name: str, specs: list[ObjectSpec], registry: dict[str, SqlObject],
                 connection: pulumi.Input[str], settings: Settings, database: str,
                 preflight: pulumi.Resource,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.objects: dict[str, SqlObject] = {}
        for spec in specs:
            # Nothing is applied before the preflight has passed.
            depends = [preflight, *(registry[key] for key in spec.depends_on)]
            # Indexes and statistics go with their table: once it is dropped there is
            # nothing to drop.
            # Not triggers (their function can only be dropped after them) nor grants (a
            # role can only be dropped once its grants are revoked).
            owner = registry.get(f"{Kind.TABLE}:{spec.schema}.{spec.table}") \
                if spec.kind in (Kind.INDEX, Kind.STATISTICS) else None
            password = settings.role_password(spec.name) if spec.kind == Kind.ROLE else None
            label = f"{spec.schema}.{spec.name}" if spec.schema else spec.name
            resource = SqlObject(
                f"{name}-{label}", spec, connection, database, settings.allow_data_loss,
                password,
                pulumi.ResourceOptions(parent=self, depends_on=depends, deleted_with=owner,
                                       protect=settings.protects_data and spec.data_bearing))
            registry[spec.key] = resource
            self.objects[spec.key] = resource
        self.register_outputs({"ddl": {key: r.ddl for key, r in self.objects.items()}})


class Extensions(_Family):
    TYPE = "mem0:index:Extensions"


class MemoryTables(_Family):
    TYPE = "mem0:index:MemoryTables"


class Roles(_Family):
    TYPE = "mem0:index:Roles"


class Functions(_Family):
    TYPE = "mem0:index:Functions"


class Indexes(_Family):
    TYPE = "mem0:index:Indexes"


class Triggers(_Family):
    TYPE = "mem0:index:Triggers"


class Grants(_Family):
    TYPE = "mem0:index:Grants"


class Policies(_Family):
    TYPE = "mem0:index:Policies"


class SearchSettings(_Family):
    TYPE = "mem0:index:SearchSettings"


class LifecycleJobs(_Family):
    TYPE = "mem0:index:LifecycleJobs"


COMPONENTS: dict[Family, type[_Family]] = {
    Family.EXTENSIONS: Extensions, Family.ROLES: Roles, Family.TABLES: MemoryTables,
    Family.FUNCTIONS: Functions, Family.INDEXES: Indexes, Family.TRIGGERS: Triggers,
    Family.GRANTS: Grants, Family.POLICIES: Policies, Family.SEARCH_SETTINGS: SearchSettings,
    Family.JOBS: LifecycleJobs}
assert list(COMPONENTS) == list(Family), "every model family has its component, in order"


class Mem0Backend(pulumi.ComponentResource):
    """The whole memory backend of one stack."""

    def __init__(self, name: str, settings: Settings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mem0:index:Mem0Backend", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.embedded: EmbeddedPostgres | None = None
        if settings.target == "embedded":
            self.embedded = EmbeddedPostgres(f"{name}-database", settings.embedded_data_dir,
                                             child)
            connection: pulumi.Input[str] = self.embedded.connection
            database = embedded_spec(settings.embedded_data_dir)
            self.app_connection_uri: pulumi.Output[str] = pulumi.Output.secret(
                self.embedded.uri.apply(
                    lambda uri: role_url(uri, settings.app_role, settings.app_role_password)))
        else:
            url = settings.database_url
            if url is None:
                raise ValueError("databaseUrl must be set (and readable) to deploy this stack")
            # Every connection of the stack, and the one it exports, with its sslMode.
            url = stack_url(url, settings)
            connection = pulumi.Output.secret(url)
            database = database_identity(url)
            self.app_connection_uri = pulumi.Output.secret(
                role_url(url, settings.app_role, settings.app_role_password))

        specs = build_model(settings)
        fingerprint = schema_fingerprint(specs)
        self.preflight = CheckRun(f"{name}-preflight", "preflight", settings, fingerprint,
                                  connection, database, opts=child)
        registry: dict[str, SqlObject] = {}
        self.families: dict[Family, _Family] = {}
        for family, component in COMPONENTS.items():
            members = [s for s in specs if s.family == family]
            if members:
                self.families[family] = component(
                    f"{name}-{family}", members, registry, connection, settings, database,
                    self.preflight, child)
        self.checks = PostDeployChecks(f"{name}-checks", settings, fingerprint, connection,
                                       database, list(registry.values()), child)
        # mem0's tables (schema public); the snapshot copies in mem0_backup are not its.
        self.tables = sorted(s.name for s in specs
                             if s.kind == Kind.TABLE and s.schema == "public")
        self.database = database
        self.register_outputs({"tables": self.tables, "database": database,
                               "checks": self.checks.summary})
