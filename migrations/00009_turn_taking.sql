-- Turn taking (issue 20). A result's metrics.turn_taking (agent/turn_taking_metrics.ts,
-- method vox-turntaking/1) as columns derived from its report, so no writer changes: the
-- event counts behind each rate (pauses taken over, backchannels the agent stopped for,
-- bystander segments that triggered it) and the penalty. The rollups pool the events, so a
-- board's rate is takeovers ÷ pauses over every result, not a mean of per-job rates.
-- The report was validated by agent/protocol.ts (rates 0..1, integer counts) before it was stored.
ALTER TABLE eval_results
  ADD COLUMN tt_pause_n integer GENERATED ALWAYS AS
    (coalesce((report #>> '{metrics,turn_taking,n_pause}')::integer, 0)) STORED,
  ADD COLUMN tt_pause_takeovers integer GENERATED ALWAYS AS
    (coalesce(round((report #>> '{metrics,turn_taking,pause_takeover_rate}')::float8
       * (report #>> '{metrics,turn_taking,n_pause}')::integer)::integer, 0)) STORED,
  ADD COLUMN tt_backchannel_n integer GENERATED ALWAYS AS
    (coalesce((report #>> '{metrics,turn_taking,n_backchannel}')::integer, 0)) STORED,
  ADD COLUMN tt_backchannel_stops integer GENERATED ALWAYS AS
    (coalesce(round((report #>> '{metrics,turn_taking,backchannel_stop_rate}')::float8
       * (report #>> '{metrics,turn_taking,n_backchannel}')::integer)::integer, 0)) STORED,
  ADD COLUMN tt_background_n integer GENERATED ALWAYS AS
    (coalesce((report #>> '{metrics,turn_taking,n_background}')::integer, 0)) STORED,
  ADD COLUMN tt_background_triggers integer GENERATED ALWAYS AS
    (coalesce(round((report #>> '{metrics,turn_taking,background_false_trigger_rate}')::float8
       * (report #>> '{metrics,turn_taking,n_background}')::integer)::integer, 0)) STORED,
  ADD COLUMN tt_penalty_ms double precision GENERATED ALWAYS AS
    ((report #>> '{metrics,turn_taking,penalty_ms}')::float8) STORED;

-- Appended after the existing columns: rollUpResults() inserts the aggregate positionally.
ALTER TABLE eval_rollups
  ADD COLUMN tt_pause_n integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_pause_takeovers integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_backchannel_n integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_backchannel_stops integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_background_n integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_background_triggers integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_penalty_n integer NOT NULL DEFAULT 0,
  ADD COLUMN tt_penalty_sum double precision NOT NULL DEFAULT 0;
