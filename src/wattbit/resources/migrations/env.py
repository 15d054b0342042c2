"""Alembic environment for the control plane's database (run through wattbit.service.db.migrate,
or ``alembic -x url=sqlite:///wattbit.db upgrade head`` with ``script_location`` pointing here)."""

from alembic import context
from sqlalchemy import create_engine, pool

from wattbit.service.db import Base

target_metadata = Base.metadata


def _url() -> str:
    config = context.config
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=<sqlalchemy url>")
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    conn = context.config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if hasattr(context, "config"):  # run by Alembic (importing this file, e.g. for doctests, does nothing)
    if context.is_offline_mode():
        run_offline()
    else:
        run_online()
