"""SQL templates, one file per object family (installed as components.sql)."""
