"""The SQL guard and the sandboxed rendering of section SQL (no database needed).

Every attack of issue 10 is tried against every tenant-scoped model; the standard templates
must all pass, so the guard refuses attacks, not reports.
"""

from __future__ import annotations

import pytest

from orchestration.catalog import section_sql, sql_guard
from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import TemplateError
from orchestration.errors import Invalid
from orchestration.metrics import dbt_manifest

from ..helpers.isolation import ATTACKS, rls_models

MODELS = rls_models()
TEMPLATES = catalog.load_all()


def resolve(name, version=None):
    return dbt_manifest.model(name, version).relation


def check(sql: str, relations=(), parameters=section_sql.WINDOW_PARAMS) -> None:
    sql_guard.check(sql, section="loot", relations=relations, parameters=parameters)


def test_the_attacks_cover_every_tenant_scoped_model():
    assert len(MODELS) >= 12
    names = {m.name for m in MODELS}
    assert {"metric_incident_flow", "dim_analysts", "tenants"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_every_standard_section_passes(template):
    for section in template.sections:
        rendered = section_sql.render(section, resolve)
        sql_guard.check(rendered.sql, section=section.name, relations=rendered.relations,
                        parameters=section_sql.parameter_names(template))


@pytest.mark.parametrize("model", MODELS, ids=str)
@pytest.mark.parametrize("attack", ATTACKS, ids=str)
def test_attack_is_refused_naming_the_construct(attack, model):
    relation = model.relation
    with pytest.raises(sql_guard.SqlRefused) as err:
        check(attack.sql(relation, "tenant-b"), relations=[relation])
    assert isinstance(err.value, Invalid)
    assert attack.refusal in str(err.value) and str(err.value).startswith("section loot: ")


@pytest.mark.parametrize("model", MODELS, ids=str)
def test_a_model_the_template_does_not_declare_is_refused(model):
    others = [m.relation for m in MODELS if m != model]
    with pytest.raises(sql_guard.SqlRefused, match="not a dbt model the template declares"):
        check(f"select tenant_id from {model.relation}", relations=others)


@pytest.mark.parametrize("sql,refusal", [
    ("select 1; select 2", "';'"),
    ("select 1;", "';'"),
    ("do $$ begin null; end $$", "the statement is DO"),
    ("select $$x$$", "dollar-quoted"),
    ("copy (select 1) to stdout", "COPY"),
    ("insert into analytics.x values (1)", "INSERT"),
    ("update analytics.x set a = 1", "UPDATE"),
    ("create table analytics.x (a int)", "CREATE"),
    ("values (1)", "the statement is VALUES"),
    ("select E'\\x41'", "E'' escape string"),
    ("select %(secret)s", "%(secret)s is neither the run's window nor a declared filter"),
    ("select 1 from", "does not parse"),
])
def test_not_one_plain_select_is_refused(sql, refusal):
    with pytest.raises(sql_guard.SqlRefused) as err:
        check(sql)
    assert refusal in str(err.value)


def test_ctes_declared_models_percent_and_parameters_pass():
    relation = MODELS[0].relation
    check(f"""
        with a as (select tenant_id, count(*) as n from {relation} where tenant_id like 'A%' group by 1),
             b as (select tenant_id, n % 7 as r, %(window_start)s as w from a)
        select b.tenant_id, round(100.0 * r / nullif(n, 0), 1) from b join a using (tenant_id)
        where %(window_end)s is not null and coalesce(r, 0) >= 0
        -- a trailing comment
    """, relations=[relation])


def test_bind_leaves_a_literal_percent_alone_and_quotes_values():
    class Cur:  # psycopg2's quoting without a server: mogrify of one %s parameter
        def mogrify(self, sql, args):
            from psycopg2.extensions import adapt
            return sql.replace("%s", adapt(args[0]).getquoted().decode()).encode()

    sql = "select 1 where x like 'A%' and y = %(f)s and z = 5 % 2 and w like 'b%%'"
    bound = section_sql.bind(sql, {"f": "it's"}, Cur())
    assert bound == "select 1 where x like 'A%' and y = 'it''s' and z = 5 % 2 and w like 'b%'"
    with pytest.raises(TemplateError, match="does not declare"):
        section_sql.bind("select %(nope)s", {}, Cur())


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ref.__globals__ }}",
    "{{ ref.__code__.co_consts }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
])
def test_rendering_runs_in_a_sandbox(payload):
    section = TEMPLATES[0].sections[0].model_copy(update={"sql": f"select tenant_id from x -- {payload}"})
    with pytest.raises(TemplateError, match="sandbox|cannot render"):
        section_sql.render(section, resolve)


def test_rendering_records_the_relations_refs_resolve_to():
    section = TEMPLATES[0].sections[0]
    rendered = section_sql.render(section, resolve)
    assert rendered.relations == {dbt_manifest.model(n, v).relation for n, v in
                                  catalog.Template.models_read(TEMPLATES[0].model_copy(update={"sections": (section,)}))}
