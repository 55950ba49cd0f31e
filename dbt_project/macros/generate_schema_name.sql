{# A configured schema is used as is (staging, analytics): report_reader is granted on
   exactly one schema, so names must not depend on the target. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
