CREATE INDEX {{name}} ON {{table}} USING {{method}} (vector {{opclass}}) WITH ({{options}});
