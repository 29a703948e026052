"""mem0infra: the Mem0 memory backend on PostgreSQL/Supabase with pgvector, as Pulumi code.

Modules (one direction of flow): settings -> model -> resources -> provider; introspect,
connection and the CLI sit beside them. Importing this package has no side effects.
"""
