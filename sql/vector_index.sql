CREATE INDEX {{name}} ON {{table}} USING {{method}} ({{column}}) WITH ({{options}});
