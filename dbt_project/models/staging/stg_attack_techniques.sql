select technique_id, name as technique_name, tactic
from {{ source('raw', 'attack_techniques') }}
