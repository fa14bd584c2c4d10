-- Placeholder for the identity migration (issue 3), which owns number 00002. Migration
-- numbering must be gap-free, so the orchestration branch carries this empty step until the
-- identity branch is merged; the identity file replaces it.
SELECT 1;
