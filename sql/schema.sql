CREATE SCHEMA {{schema}} AUTHORIZATION {{owner}};
