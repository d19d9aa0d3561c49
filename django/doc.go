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
// ValidSessionKey tells a Django-shaped cookie (32 characters of [a-z0-9])
// from anything else without allocating. Mark records in Django's own row
// that a session was imported, so a session-by-session fallback during a
// cut-over does not import it twice.
//
// The package is the library under the CLI's "qsessions import django" and
// the middleware's Django-cookie options; it writes nothing to the Go app's
// database itself.
package django
