"""Running migrations (`aqstream migrate`) and the helpers migration scripts share."""

from __future__ import annotations

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import text

from core.settings import PROJECT_ROOT, Settings

SQL_DIR = PROJECT_ROOT / "sql"


def alembic_config(settings: Settings) -> Config:
    cfg = (
        Config(str(PROJECT_ROOT / "alembic.ini"))
        if (PROJECT_ROOT / "alembic.ini").exists()
        else Config()
    )
    cfg.set_main_option("script_location", str(SQL_DIR))
    cfg.set_main_option("version_locations", str(SQL_DIR / "versions"))
    cfg.attributes["owner_url"] = settings.owner_url.render_as_string(hide_password=False)
    cfg.attributes["app_db_user"] = settings.app_db_user
    cfg.attributes["app_db_password"] = settings.app_db_password.get_secret_value()
    cfg.attributes["warehouse_db_role"] = settings.warehouse_db_role
    cfg.attributes["warehouse_flavor"] = settings.warehouse_flavor
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is already there."""
    command.upgrade(alembic_config(settings), revision)


def current_heads(settings: Settings) -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


# --- helpers for scripts under sql/versions ---------------------------------------------------


def app_role() -> tuple[str, str]:
    """Name and password of the application role, as configured for this run."""
    attrs = context.config.attributes
    if "app_db_user" in attrs:
        return attrs["app_db_user"], attrs["app_db_password"]
    settings = Settings()
    return settings.app_db_user, settings.app_db_password.get_secret_value()


def execute_formatted(template: str, **params: str) -> None:
    """Run DDL whose identifiers (%I) and literals (%L) are quoted by PostgreSQL's format()."""
    bind = op.get_bind()
    args = "".join(f", CAST(:{name} AS text)" for name in params)
    statement = bind.execute(text(f"SELECT format('{template}'{args})"), params).scalar_one()
    bind.exec_driver_sql(statement)


def grant_app(privileges: str, table: str) -> None:
    """GRANT ``privileges`` on ``table`` to the application role."""
    execute_formatted(f"GRANT {privileges} ON %I TO %I", t=table, u=app_role()[0])


class WarehouseFlavorError(RuntimeError):
    """The server cannot give the warehouse the flavour it was asked for."""


def choose_warehouse_flavor(
    wanted: str, *, installed: bool, available: bool, preloaded: bool
) -> str:
    """The warehouse's flavour: ``timescale`` where TimescaleDB is usable, that is loaded
    (listed in shared_preload_libraries, or already created in this database), not merely
    available; ``wanted`` (AQSTREAM_WAREHOUSE_FLAVOR) ``timescale`` insists, ``postgres``
    declines it."""
    if wanted == "postgres":
        return "postgres"
    usable = installed or (available and preloaded)
    if usable:
        return "timescale"
    if wanted == "timescale":
        if not available:
            raise WarehouseFlavorError(
                "AQSTREAM_WAREHOUSE_FLAVOR=timescale, but the timescaledb extension is not "
                "installed on this PostgreSQL server"
            )
        raise WarehouseFlavorError(
            "the timescaledb extension is installed but not loaded: add timescaledb to "
            "shared_preload_libraries (postgresql.conf, or -c shared_preload_libraries="
            "timescaledb) and restart the server; or set AQSTREAM_WAREHOUSE_FLAVOR=postgres"
        )
    return "postgres"


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def run_sql_file(name: str, **roles: str) -> None:
    """Execute ``sql/ddl/<name>``, with ``__APP__`` standing for the quoted application role and
    ``__<KEY>__`` for each of ``roles`` (quoted role names)."""
    bind = op.get_bind()
    script = (SQL_DIR / "ddl" / name).read_text()
    for placeholder, role in {"APP": app_role()[0], **roles}.items():
        quoted = bind.execute(text("SELECT quote_ident(:u)"), {"u": role}).scalar_one()
        script = script.replace(f"__{placeholder}__", quoted)
    # Straight to psycopg without parameters, so `%` in format() strings stays literal.
    with bind.connection.driver_connection.cursor() as cursor:
        cursor.execute(script)
