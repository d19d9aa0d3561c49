// Package django carries Django sessions over to qsessions, so a Django app
// rewritten in Go (whole, or a route at a time) signs no one out.
//
// It reads Django's session tables (django.contrib.sessions' django_session
// and django-qsessions' qsessions_session) on PostgreSQL, MySQL/MariaDB and
// SQLite with Reader; verifies and decodes session_data exactly as Django
// does with Signer.Decode (Django ≥ 3.1's signing.dumps format, SHA-256 or
// SHA-1, zlib-compressed or not, and the legacy pre-3.1 format, under
// SECRET_KEY and SECRET_KEY_FALLBACKS); and converts a row to what an
// importer writes with Signer.Convert: the qsessions stored key (the
// SHA-256 of Django's session_key, so the Django cookie becomes a qsessions
// token), the user id, IP, User-Agent, times and values.
//
// Values come out as the kinds qsessions' codec stores: string, int64
// (float64 for integers beyond int64), float64, bool, nil, []any and
// map[string]any; qsessions.EncodeData stores them as they are.
// Pickle-serialized sessions are refused (ErrPickle) and never executed.
//
// Import copies every live session of a Django table into the Go app's
// qsessions_session (a Target: the app's database through sqlstore, its
// users table and the Ledger), in batches of one transaction each, skipping
// and counting by Reason what cannot be imported; the CLI's
// "qsessions import django" is a thin shell around it. Tokens, set as a
// qsessions.Manager's Legacy, lets Django cookies in (ValidSessionKey tells
// a Django-shaped cookie, 32 characters of [a-z0-9], from anything else
// without allocating), and its Fallback imports a Django session at its
// first request during a cut-over in which both apps serve.
//
// Ledger records in the Go app's database which sessions were imported, in
// the transaction that inserts them, so none is imported twice: not by a
// second run, and not by the fallback after the Go side revoked it,
// whatever Django does to its own row. Mark records the same in Django's
// own row instead; it is weaker (a concurrent Django save erases it) and
// needs write access to Django's database.
//
// Django's database is only read (Mark, when asked, writes its mark). Of
// the Go app's database the package writes qsessions_session and the
// Ledger's table, and only through Import, the Fallback and
// Target.CreateLedger. It links no database driver. docs/django.md is the
// cut-over recipe and the map of Django's settings.
package django
