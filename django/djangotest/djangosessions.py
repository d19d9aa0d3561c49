"""Creates and reads sessions with real Django, for the Go tests of package django.

Run with Debian's /usr/bin/python3 and its python3-django (3.2):

    /usr/bin/python3 djangosessions.py MODE CONFIG_JSON

CONFIG_JSON: {"db": {"vendor": "sqlite"|"postgresql"|"mysql", "name": ..., "host": ...,
"port": ..., "user": ..., "password": ..., "search_path": ...}, "secret": ..., "old_secret": ...,
optionally "use_tz": false and "time_zone": NAME (then run with TZ=NAME in the environment)}
plus "items": [{"table": ..., "key": ...}] for load and touch, "table" and "key" for stale-save.

Modes:
  create      makes the tables and the sessions, prints {"cases": [...], "users": {name: pk}}: one
              case per session with what Django itself decodes from it (values tagged with their
              Python types).
  load        prints [{"found": bool, "values": ...}] per item: what Django's own session store
              serves for that key (found is false when Django starts a new session instead).
  touch       loads each item with Django, sets "touched" = True, saves; prints the new rows' data.
  stale-save  loads "key", prints "loaded", waits for a line on stdin, then sets "stale" = True
              and saves (a Django request that was running while something else wrote the row).
  generate    writes "n" sessions into django_session (created if missing), each
              signed by Django's own SessionStore.encode: users 1.."users" in turn, every tenth
              session anonymous, "expired" more rows already expired; with COPY on PostgreSQL,
              batched INSERTs elsewhere. Prints {"live": n, "expired": ..., "seconds": ...}.
              For measuring imports of millions of sessions.

The qsessions_session table and its store reproduce django-qsessions' model and
SessionStore (qsessions/models.py, qsessions/backends/db.py): the same columns, the same
create_model_instance and save, declared here so the test needs only Debian's Django.
"""

import json
import sys
from datetime import timedelta

from django.conf import settings

MODE = sys.argv[1]
CFG = json.loads(sys.argv[2])


def database(c):
    if c["vendor"] == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": c["name"]}
    if c["vendor"] == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": c["name"], "USER": c["user"], "PASSWORD": c.get("password", ""),
            "HOST": c["host"], "PORT": c["port"],
            "OPTIONS": {"options": "-c search_path=%s" % c["search_path"]},
        }
    if c["vendor"] == "mysql":
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": c["name"], "USER": c["user"], "PASSWORD": c.get("password", ""),
            "HOST": c["host"], "PORT": c["port"], "OPTIONS": {"charset": "utf8mb4"},
        }
    raise SystemExit("unknown vendor %r" % c["vendor"])


settings.configure(
    SECRET_KEY=CFG["secret"],
    DATABASES={"default": database(CFG["db"])},
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    # USE_TZ = False stores naive wall-clock times of TIME_ZONE (MySQL, SQLite);
    # run the script with the TZ environment variable set to the same zone.
    USE_TZ=CFG.get("use_tz", True),
    TIME_ZONE=CFG.get("time_zone", "UTC"),
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    SESSION_SERIALIZER="django.contrib.sessions.serializers.JSONSerializer",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
)

import django  # noqa: E402

django.setup()

from django.contrib import auth  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore as DBStore  # noqa: E402
from django.contrib.sessions.base_session import AbstractBaseSession  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.core import signing  # noqa: E402
from django.db import connection, models  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

IP_SESSION_KEY = "_qsessions_ip"
USER_AGENT_SESSION_KEY = "_qsessions_user_agent"


class QSession(AbstractBaseSession):
    """django-qsessions' Session model (qsessions/models.py), same columns."""

    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE)
    user_agent = models.CharField(null=True, blank=True, max_length=300)
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name="IP")

    class Meta:
        app_label = "sessions"
        db_table = "qsessions_session"

    @classmethod
    def get_session_store_class(cls):
        return SessionStore

    def save(self, *args, **kwargs):
        try:
            self.created_at = QSession.objects.get(pk=self.pk).created_at
        except QSession.DoesNotExist:
            self.created_at = timezone.now()
        super().save(*args, **kwargs)


class SessionStore(DBStore):
    """django-qsessions' SessionStore (qsessions/backends/db.py)."""

    def __init__(self, session_key=None, user_agent=None, ip=None):
        self.user_agent = user_agent[:300] if user_agent else user_agent
        self.ip = ip
        super().__init__(session_key)

    @classmethod
    def get_model_class(cls):
        return QSession

    def load(self):
        data = super().load()
        if data.get(USER_AGENT_SESSION_KEY) != self.user_agent or data.get(IP_SESSION_KEY) != self.ip:
            self.modified = True
        return data

    def save(self, must_create=False):
        if USER_AGENT_SESSION_KEY not in self or self[USER_AGENT_SESSION_KEY] != self.user_agent:
            self[USER_AGENT_SESSION_KEY] = self.user_agent
        if IP_SESSION_KEY not in self or self[IP_SESSION_KEY] != self.ip:
            self[IP_SESSION_KEY] = self.ip
        super().save(must_create)

    def create_model_instance(self, data):
        return self.model(
            session_key=self._get_or_create_session_key(),
            session_data=self.encode(data),
            expire_date=self.get_expiry_date(),
            user_id=self.get(auth.SESSION_KEY),
            user_agent=self.user_agent,
            ip=self.ip,
        )


STORES = {"django_session": (DBStore, Session), "qsessions_session": (SessionStore, QSession)}


def tag(v):
    """v with its Python type, so Go compares without trusting any JSON reader."""
    if v is None:
        return {"t": "null"}
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "float", "v": repr(v)}
    if isinstance(v, str):
        return {"t": "str", "v": v}
    if isinstance(v, (list, tuple)):
        return {"t": "list", "v": [tag(x) for x in v]}
    if isinstance(v, dict):
        return {"t": "dict", "v": {k: tag(x) for k, x in v.items()}}
    raise TypeError(type(v))


def iso(t):
    return t.astimezone(timezone.utc).isoformat() if t else None


RICH = {
    "str": "h\u00e9llo w\u00f6rld \u2713 \U0001F600",
    "int": 42, "neg": -7, "zero": 0,
    "int64max": 2**63 - 1, "int64min": -2**63, "over": 2**63, "big": 2**70,
    "float": 1.5, "whole_float": 2.0, "tiny": 5e-324, "huge": 1.7976931348623157e308, "negzero": -0.0,
    "true": True, "false": False, "none": None,
    "list": [1, "two", 3.0, None, [True]],
    "nested": {"a": {"b": [{"c": "d"}], "e": {}}},
    "empty_list": [], "empty_dict": {},
    "escapes": "quote\" backslash\\ slash/ nl\n tab\t nul\x00 ctrl\x1f del\x7f",
    "": "empty key",
}


def login(store, user):
    request = HttpRequest()
    request.session = store
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return request.session


def case(name, table, key, **extra):
    store_cls, model = STORES[table]
    row = model.objects.get(pk=key)
    out = {
        "name": name, "table": table, "key": key,
        "session_data": row.session_data,
        "expire_date": iso(row.expire_date),
        "live": row.expire_date > timezone.now(),
        "error": None, "fallback": False,
    }
    if table == "qsessions_session":
        out.update(user_id=None if row.user_id is None else str(row.user_id), ip=row.ip,
                   user_agent=row.user_agent, created_at=iso(row.created_at), updated_at=iso(row.updated_at))
    out.update(extra)
    # What Django itself decodes from the row (under the key it was made with).
    secret = CFG["old_secret"] if out["fallback"] else CFG["secret"]
    serializer = ("django.contrib.sessions.serializers.PickleSerializer" if out["error"] == "pickle"
                  else settings.SESSION_SERIALIZER)
    with override_settings(SECRET_KEY=secret, SESSION_SERIALIZER=serializer):
        decoded = store_cls().decode(row.session_data)
        if out["live"] and out["error"] is None:
            served = store_cls(key).load()  # Django's own load path, with its expiry check
            assert json.dumps(tag(served)) == json.dumps(tag(decoded)), (name, served, decoded)
    if out["error"] in (None, "pickle"):
        assert decoded, ("Django decodes nothing", name)
        out["values"] = tag(decoded)
    else:
        assert decoded == {}, ("Django accepts tampered data", name)
    return out


def new(table, values, user=None, ip=None, ua=None):
    store_cls, _ = STORES[table]
    s = SessionStore(ip=ip, user_agent=ua) if store_cls is SessionStore else store_cls()
    for k, v in values.items():
        s[k] = v
    if user is not None:
        s = login(s, user)
    s.save()
    return s.session_key


def tamper(table, key):
    _, model = STORES[table]
    data = model.objects.get(pk=key).session_data
    i = len(data) // 3
    c = "A" if data[i] != "A" else "B"
    model.objects.filter(pk=key).update(session_data=data[:i] + c + data[i + 1:])


def expire(table, key):
    _, model = STORES[table]
    model.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(hours=1))


def create():
    with connection.schema_editor() as e:
        for m in (ContentType, Permission, Group, User, Session, QSession):
            e.create_model(m)
    alice = User.objects.create_user("alice", password="pw-alice")
    bob = User.objects.create_user("bob", password="pw-bob")
    cases = []
    S, Q = "django_session", "qsessions_session"

    k = new(S, RICH, user=alice)
    cases.append(case("login_sha256", S, k, user=str(alice.pk), format="signed", alg="sha256"))
    k = new(S, {"cart": [1, 2, 3]})
    cases.append(case("anonymous", S, k, format="signed", alg="sha256"))
    k = new(S, {"blob": "abc" * 3000, "n": 1})
    cases.append(case("compressed", S, k, format="signed", alg="sha256", compressed=True))
    assert cases[-1]["session_data"].startswith("."), "not compressed"
    k = new(S, {"k": "v"})
    cases.append(case("uncompressed", S, k, format="signed", alg="sha256", compressed=False))
    assert not cases[-1]["session_data"].startswith(".")
    k = new(S, {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")})
    cases.append(case("special_floats", S, k, format="signed", alg="sha256"))
    s = DBStore()
    s.set_expiry(0)  # "remember me" off: a browser-session cookie
    s["x"] = 1
    s.save()
    cases.append(case("browser_session", S, s.session_key, format="signed", alg="sha256"))
    with override_settings(SECRET_KEY=CFG["old_secret"]):
        k = new(S, {"old": True}, user=bob)
    cases.append(case("fallback_key", S, k, user=str(bob.pk), fallback=True, format="signed", alg="sha256"))
    # SHA-1 signatures in the signed format: Django 3.1/3.2's signing.dumps
    # with DEFAULT_HASHING_ALGORITHM = "sha1" (3.2's session store then
    # writes the legacy format, below, but reads these).
    k = new(S, {"alg": "sha1"}, user=alice)
    s = DBStore(k)
    values = s.load()
    with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
        data = signing.dumps(values, salt=s.key_salt, serializer=s.serializer, compress=True)
    Session.objects.filter(pk=k).update(session_data=data)
    cases.append(case("sha1_signed", S, k, user=str(alice.pk), format="signed", alg="sha1"))
    k = new(S, {"blob": "xyz" * 3000})
    s = DBStore(k)
    values = s.load()
    with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
        data = signing.dumps(values, salt=s.key_salt, serializer=s.serializer, compress=True)
    Session.objects.filter(pk=k).update(session_data=data)
    cases.append(case("sha1_signed_compressed", S, k, format="signed", alg="sha1", compressed=True))
    with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
        k = new(S, {"legacy": [1, 2.5, "x"], "str": RICH["str"]}, user=bob)
    assert ":" not in Session.objects.get(pk=k).session_data
    cases.append(case("legacy", S, k, user=str(bob.pk), format="legacy", alg="sha1"))
    with override_settings(DEFAULT_HASHING_ALGORITHM="sha1", SECRET_KEY=CFG["old_secret"]):
        k = new(S, {"legacy_old": True})
    cases.append(case("legacy_fallback_key", S, k, fallback=True, format="legacy", alg="sha1"))
    k = new(S, {"gone": True}, user=alice)
    expire(S, k)
    cases.append(case("expired", S, k, user=str(alice.pk), format="signed", alg="sha256"))
    k = new(S, {"evil": False}, user=alice)
    tamper(S, k)
    cases.append(case("tampered", S, k, error="bad_signature"))
    with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
        k = new(S, {"evil": False}, user=alice)
    tamper(S, k)
    cases.append(case("tampered_legacy", S, k, error="bad_signature"))
    with override_settings(SESSION_SERIALIZER="django.contrib.sessions.serializers.PickleSerializer"):
        k = new(S, {"pickled": True}, user=alice)
    cases.append(case("pickle", S, k, error="pickle"))
    with override_settings(SESSION_SERIALIZER="django.contrib.sessions.serializers.PickleSerializer",
                           DEFAULT_HASHING_ALGORITHM="sha1"):
        k = new(S, {"pickled": "legacy"})
    cases.append(case("pickle_legacy", S, k, error="pickle"))
    for i in range(23):
        k = new(S, {"n": i})
        cases.append(case("page%02d" % i, S, k, format="signed", alg="sha256"))

    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    k = new(Q, {"theme": "dark", "n": 3}, user=alice, ip="::ffff:10.1.2.3", ua=ua)
    cases.append(case("q_login", Q, k, user=str(alice.pk), format="signed", alg="sha256"))
    k = new(Q, {"cart": ["a"]}, ip="2001:db8::1", ua="\u00e9" * 400)
    cases.append(case("q_anonymous_long_ua", Q, k, format="signed", alg="sha256"))
    k = new(Q, {"x": None})
    cases.append(case("q_no_ip_ua", Q, k, format="signed", alg="sha256"))
    with override_settings(SECRET_KEY=CFG["old_secret"]):
        k = new(Q, {"old": 1}, user=bob, ip="192.0.2.7", ua="curl/8.0")
    cases.append(case("q_fallback_key", Q, k, user=str(bob.pk), fallback=True, format="signed", alg="sha256"))
    with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
        k = new(Q, {"legacy": True}, user=bob, ip="192.0.2.8", ua="curl/7.0")
    cases.append(case("q_legacy", Q, k, user=str(bob.pk), format="legacy", alg="sha1"))
    k = new(Q, {"gone": True}, user=bob, ip="192.0.2.9", ua="x")
    expire(Q, k)
    cases.append(case("q_expired", Q, k, user=str(bob.pk), format="signed", alg="sha256"))
    k = new(Q, {"evil": 1}, user=bob, ip="192.0.2.10", ua="y")
    tamper(Q, k)
    cases.append(case("q_tampered", Q, k, error="bad_signature"))
    print(json.dumps({"cases": cases, "django": django.get_version(),
                      "users": {"alice": str(alice.pk), "bob": str(bob.pk)}}))


def store_for(table, key):
    store_cls, model = STORES[table]
    if store_cls is SessionStore:
        row = model.objects.filter(pk=key).first()
        return SessionStore(key, ip=row and row.ip, user_agent=row and row.user_agent)
    return store_cls(key)


def load():
    out = []
    for it in CFG["items"]:
        s = store_for(it["table"], it["key"])
        values = s.load()
        out.append({"found": s.session_key is not None, "values": tag(values)})
    print(json.dumps(out))


def touch():
    out = []
    for it in CFG["items"]:
        s = store_for(it["table"], it["key"])
        s["touched"] = True
        s.save()
        _, model = STORES[it["table"]]
        out.append(model.objects.get(pk=it["key"]).session_data)
    print(json.dumps(out))


def stale_save():
    s = store_for(CFG["table"], CFG["key"])
    s.load()
    s._session_cache = s.load()
    print("loaded", flush=True)
    sys.stdin.readline()
    s["stale"] = True
    s.save()
    print("saved", flush=True)


def generate():
    import io
    import secrets
    import time

    start = time.time()
    table = "django_session"
    store_cls, model = STORES[table]
    if table not in connection.introspection.table_names():
        with connection.schema_editor() as e:
            e.create_model(model)
    n, users, n_expired = CFG["n"], max(1, CFG.get("users", 1)), CFG.get("expired", 0)
    now = timezone.now()
    live_until, dead_since = now + timedelta(days=14), now - timedelta(hours=1)
    if connection.vendor != "postgresql":  # as the ORM writes datetimes there
        live_until = connection.ops.adapt_datetimefield_value(live_until)
        dead_since = connection.ops.adapt_datetimefield_value(dead_since)
    store = store_cls()
    auth_hash = "9c2f6b1d0e8a47b3a5c4d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1"
    pg = connection.vendor == "postgresql"
    cols = ["session_key", "session_data", "expire_date"]

    def row(i, expire):
        values = {"cart": [i % 7, "item-%d" % (i % 100)], "theme": "dark", "n": i}
        if i % 10 != 9:
            values.update({"_auth_user_id": str(1 + i % users),
                           "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                           "_auth_user_hash": auth_hash})
        return [secrets.token_hex(16), store.encode(values), expire]

    total = n + n_expired
    chunk = 20000
    with connection.cursor() as cur:
        for lo in range(0, total, chunk):
            rows = [row(i, live_until if i < n else dead_since) for i in range(lo, min(lo + chunk, total))]
            if pg:
                buf = io.StringIO()
                for r in rows:
                    buf.write("\t".join("\\N" if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v))
                                         for v in r) + "\n")
                buf.seek(0)
                cur.cursor.copy_expert("COPY %s (%s) FROM STDIN" % (table, ", ".join(cols)), buf)
            else:
                ph = ", ".join(["%s"] * len(cols))
                cur.executemany("INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(cols), ph), rows)
    print(json.dumps({"live": n, "expired": n_expired, "seconds": round(time.time() - start, 1)}))


{"create": create, "load": load, "touch": touch, "stale-save": stale_save, "generate": generate}[MODE]()
