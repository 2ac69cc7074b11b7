"""The database: tables, store, SQL directory, accounts, audit and school file."""
