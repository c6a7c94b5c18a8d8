# Triggers that keep monitoring_gpu_rollup (0003) in step with gpu_stats.

from django.db import migrations

# Statement-level triggers keep monitoring_gpu_rollup in step with gpu_stats for
# every write path (sampler, COPY, restores, retention deletes, TRUNCATE). Generated
# from monitoring.services.rollup.ROLLUP_AVERAGES / ROLLUP_MAXIMA; a later change to those
# lists needs a migration that replaces these functions.
ROLLUP_SQL = r"""
CREATE OR REPLACE FUNCTION monitoring_gpu_rollup_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Maxima are not lowered when rows go away (a deleted peak stays the bucket's
  -- peak until the bucket is empty and removed); sums and counts are exact.
  IF TG_OP = 'TRUNCATE' THEN
    -- DELETE, not TRUNCATE: a "TRUNCATE gpu_stats, monitoring_gpu_rollup" (Django's
    -- flush) still has the rollup open when this runs, and TRUNCATE would refuse.
    DELETE FROM monitoring_gpu_rollup;
    RETURN NULL;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE monitoring_gpu_rollup AS r SET
        samples = r.samples - d.samples,
        gpu_utilization_sum = r.gpu_utilization_sum - d.gpu_utilization_sum, gpu_utilization_n = r.gpu_utilization_n - d.gpu_utilization_n,
        memory_bandwidth_utilization_sum = r.memory_bandwidth_utilization_sum - d.memory_bandwidth_utilization_sum, memory_bandwidth_utilization_n = r.memory_bandwidth_utilization_n - d.memory_bandwidth_utilization_n,
        memory_used_sum = r.memory_used_sum - d.memory_used_sum, memory_used_n = r.memory_used_n - d.memory_used_n,
        temperature_sum = r.temperature_sum - d.temperature_sum, temperature_n = r.temperature_n - d.temperature_n,
        power_usage_sum = r.power_usage_sum - d.power_usage_sum, power_usage_n = r.power_usage_n - d.power_usage_n,
        sm_clock_sum = r.sm_clock_sum - d.sm_clock_sum, sm_clock_n = r.sm_clock_n - d.sm_clock_n,
        memory_clock_sum = r.memory_clock_sum - d.memory_clock_sum, memory_clock_n = r.memory_clock_n - d.memory_clock_n,
        fan_speed_sum = r.fan_speed_sum - d.fan_speed_sum, fan_speed_n = r.fan_speed_n - d.fan_speed_n,
        inference_fps_sum = r.inference_fps_sum - d.inference_fps_sum, inference_fps_n = r.inference_fps_n - d.inference_fps_n,
        pcie_tx_throughput_sum = r.pcie_tx_throughput_sum - d.pcie_tx_throughput_sum, pcie_tx_throughput_n = r.pcie_tx_throughput_n - d.pcie_tx_throughput_n,
        pcie_rx_throughput_sum = r.pcie_rx_throughput_sum - d.pcie_rx_throughput_sum, pcie_rx_throughput_n = r.pcie_rx_throughput_n - d.pcie_rx_throughput_n,
        encoder_utilization_sum = r.encoder_utilization_sum - d.encoder_utilization_sum, encoder_utilization_n = r.encoder_utilization_n - d.encoder_utilization_n,
        decoder_utilization_sum = r.decoder_utilization_sum - d.decoder_utilization_sum, decoder_utilization_n = r.decoder_utilization_n - d.decoder_utilization_n
    FROM (SELECT host, gpu_index, date_bin(INTERVAL '1 minute', recorded_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           count(*) AS samples,
           coalesce(sum(gpu_utilization), 0)::float8 AS gpu_utilization_sum,
           count(gpu_utilization) AS gpu_utilization_n,
           coalesce(sum(memory_bandwidth_utilization), 0)::float8 AS memory_bandwidth_utilization_sum,
           count(memory_bandwidth_utilization) AS memory_bandwidth_utilization_n,
           coalesce(sum(memory_used), 0)::float8 AS memory_used_sum,
           count(memory_used) AS memory_used_n,
           coalesce(sum(temperature), 0)::float8 AS temperature_sum,
           count(temperature) AS temperature_n,
           coalesce(sum(power_usage), 0)::float8 AS power_usage_sum,
           count(power_usage) AS power_usage_n,
           coalesce(sum(sm_clock), 0)::float8 AS sm_clock_sum,
           count(sm_clock) AS sm_clock_n,
           coalesce(sum(memory_clock), 0)::float8 AS memory_clock_sum,
           count(memory_clock) AS memory_clock_n,
           coalesce(sum(fan_speed), 0)::float8 AS fan_speed_sum,
           count(fan_speed) AS fan_speed_n,
           coalesce(sum(inference_fps), 0)::float8 AS inference_fps_sum,
           count(inference_fps) AS inference_fps_n,
           coalesce(sum(pcie_tx_throughput), 0)::float8 AS pcie_tx_throughput_sum,
           count(pcie_tx_throughput) AS pcie_tx_throughput_n,
           coalesce(sum(pcie_rx_throughput), 0)::float8 AS pcie_rx_throughput_sum,
           count(pcie_rx_throughput) AS pcie_rx_throughput_n,
           coalesce(sum(encoder_utilization), 0)::float8 AS encoder_utilization_sum,
           count(encoder_utilization) AS encoder_utilization_n,
           coalesce(sum(decoder_utilization), 0)::float8 AS decoder_utilization_sum,
           count(decoder_utilization) AS decoder_utilization_n,
           max(memory_total)::float8 AS memory_total_max,
           max(temperature)::float8 AS temperature_max,
           max(power_limit)::float8 AS power_limit_max
    FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) AS d
    WHERE r.host = d.host AND r.gpu_index = d.gpu_index AND r.bucket = d.bucket;
    DELETE FROM monitoring_gpu_rollup AS r USING (SELECT DISTINCT host, gpu_index, date_bin(INTERVAL '1 minute', recorded_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket FROM old_rows) AS d
    WHERE r.host = d.host AND r.gpu_index = d.gpu_index AND r.bucket = d.bucket AND r.samples <= 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO monitoring_gpu_rollup AS r (host, gpu_index, bucket, samples, gpu_utilization_sum, gpu_utilization_n, memory_bandwidth_utilization_sum, memory_bandwidth_utilization_n, memory_used_sum, memory_used_n, temperature_sum, temperature_n, power_usage_sum, power_usage_n, sm_clock_sum, sm_clock_n, memory_clock_sum, memory_clock_n, fan_speed_sum, fan_speed_n, inference_fps_sum, inference_fps_n, pcie_tx_throughput_sum, pcie_tx_throughput_n, pcie_rx_throughput_sum, pcie_rx_throughput_n, encoder_utilization_sum, encoder_utilization_n, decoder_utilization_sum, decoder_utilization_n, memory_total_max, temperature_max, power_limit_max)
    SELECT host, gpu_index, date_bin(INTERVAL '1 minute', recorded_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           count(*) AS samples,
           coalesce(sum(gpu_utilization), 0)::float8 AS gpu_utilization_sum,
           count(gpu_utilization) AS gpu_utilization_n,
           coalesce(sum(memory_bandwidth_utilization), 0)::float8 AS memory_bandwidth_utilization_sum,
           count(memory_bandwidth_utilization) AS memory_bandwidth_utilization_n,
           coalesce(sum(memory_used), 0)::float8 AS memory_used_sum,
           count(memory_used) AS memory_used_n,
           coalesce(sum(temperature), 0)::float8 AS temperature_sum,
           count(temperature) AS temperature_n,
           coalesce(sum(power_usage), 0)::float8 AS power_usage_sum,
           count(power_usage) AS power_usage_n,
           coalesce(sum(sm_clock), 0)::float8 AS sm_clock_sum,
           count(sm_clock) AS sm_clock_n,
           coalesce(sum(memory_clock), 0)::float8 AS memory_clock_sum,
           count(memory_clock) AS memory_clock_n,
           coalesce(sum(fan_speed), 0)::float8 AS fan_speed_sum,
           count(fan_speed) AS fan_speed_n,
           coalesce(sum(inference_fps), 0)::float8 AS inference_fps_sum,
           count(inference_fps) AS inference_fps_n,
           coalesce(sum(pcie_tx_throughput), 0)::float8 AS pcie_tx_throughput_sum,
           count(pcie_tx_throughput) AS pcie_tx_throughput_n,
           coalesce(sum(pcie_rx_throughput), 0)::float8 AS pcie_rx_throughput_sum,
           count(pcie_rx_throughput) AS pcie_rx_throughput_n,
           coalesce(sum(encoder_utilization), 0)::float8 AS encoder_utilization_sum,
           count(encoder_utilization) AS encoder_utilization_n,
           coalesce(sum(decoder_utilization), 0)::float8 AS decoder_utilization_sum,
           count(decoder_utilization) AS decoder_utilization_n,
           max(memory_total)::float8 AS memory_total_max,
           max(temperature)::float8 AS temperature_max,
           max(power_limit)::float8 AS power_limit_max
    FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (host, gpu_index, bucket) DO UPDATE SET
        samples = r.samples + EXCLUDED.samples,
        gpu_utilization_sum = r.gpu_utilization_sum + EXCLUDED.gpu_utilization_sum, gpu_utilization_n = r.gpu_utilization_n + EXCLUDED.gpu_utilization_n,
        memory_bandwidth_utilization_sum = r.memory_bandwidth_utilization_sum + EXCLUDED.memory_bandwidth_utilization_sum, memory_bandwidth_utilization_n = r.memory_bandwidth_utilization_n + EXCLUDED.memory_bandwidth_utilization_n,
        memory_used_sum = r.memory_used_sum + EXCLUDED.memory_used_sum, memory_used_n = r.memory_used_n + EXCLUDED.memory_used_n,
        temperature_sum = r.temperature_sum + EXCLUDED.temperature_sum, temperature_n = r.temperature_n + EXCLUDED.temperature_n,
        power_usage_sum = r.power_usage_sum + EXCLUDED.power_usage_sum, power_usage_n = r.power_usage_n + EXCLUDED.power_usage_n,
        sm_clock_sum = r.sm_clock_sum + EXCLUDED.sm_clock_sum, sm_clock_n = r.sm_clock_n + EXCLUDED.sm_clock_n,
        memory_clock_sum = r.memory_clock_sum + EXCLUDED.memory_clock_sum, memory_clock_n = r.memory_clock_n + EXCLUDED.memory_clock_n,
        fan_speed_sum = r.fan_speed_sum + EXCLUDED.fan_speed_sum, fan_speed_n = r.fan_speed_n + EXCLUDED.fan_speed_n,
        inference_fps_sum = r.inference_fps_sum + EXCLUDED.inference_fps_sum, inference_fps_n = r.inference_fps_n + EXCLUDED.inference_fps_n,
        pcie_tx_throughput_sum = r.pcie_tx_throughput_sum + EXCLUDED.pcie_tx_throughput_sum, pcie_tx_throughput_n = r.pcie_tx_throughput_n + EXCLUDED.pcie_tx_throughput_n,
        pcie_rx_throughput_sum = r.pcie_rx_throughput_sum + EXCLUDED.pcie_rx_throughput_sum, pcie_rx_throughput_n = r.pcie_rx_throughput_n + EXCLUDED.pcie_rx_throughput_n,
        encoder_utilization_sum = r.encoder_utilization_sum + EXCLUDED.encoder_utilization_sum, encoder_utilization_n = r.encoder_utilization_n + EXCLUDED.encoder_utilization_n,
        decoder_utilization_sum = r.decoder_utilization_sum + EXCLUDED.decoder_utilization_sum, decoder_utilization_n = r.decoder_utilization_n + EXCLUDED.decoder_utilization_n,
        memory_total_max = greatest(r.memory_total_max, EXCLUDED.memory_total_max),
        temperature_max = greatest(r.temperature_max, EXCLUDED.temperature_max),
        power_limit_max = greatest(r.power_limit_max, EXCLUDED.power_limit_max);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION monitoring_gpu_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM monitoring_gpu_rollup;
  INSERT INTO monitoring_gpu_rollup AS r (host, gpu_index, bucket, samples, gpu_utilization_sum, gpu_utilization_n, memory_bandwidth_utilization_sum, memory_bandwidth_utilization_n, memory_used_sum, memory_used_n, temperature_sum, temperature_n, power_usage_sum, power_usage_n, sm_clock_sum, sm_clock_n, memory_clock_sum, memory_clock_n, fan_speed_sum, fan_speed_n, inference_fps_sum, inference_fps_n, pcie_tx_throughput_sum, pcie_tx_throughput_n, pcie_rx_throughput_sum, pcie_rx_throughput_n, encoder_utilization_sum, encoder_utilization_n, decoder_utilization_sum, decoder_utilization_n, memory_total_max, temperature_max, power_limit_max)
    SELECT host, gpu_index, date_bin(INTERVAL '1 minute', recorded_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           count(*) AS samples,
           coalesce(sum(gpu_utilization), 0)::float8 AS gpu_utilization_sum,
           count(gpu_utilization) AS gpu_utilization_n,
           coalesce(sum(memory_bandwidth_utilization), 0)::float8 AS memory_bandwidth_utilization_sum,
           count(memory_bandwidth_utilization) AS memory_bandwidth_utilization_n,
           coalesce(sum(memory_used), 0)::float8 AS memory_used_sum,
           count(memory_used) AS memory_used_n,
           coalesce(sum(temperature), 0)::float8 AS temperature_sum,
           count(temperature) AS temperature_n,
           coalesce(sum(power_usage), 0)::float8 AS power_usage_sum,
           count(power_usage) AS power_usage_n,
           coalesce(sum(sm_clock), 0)::float8 AS sm_clock_sum,
           count(sm_clock) AS sm_clock_n,
           coalesce(sum(memory_clock), 0)::float8 AS memory_clock_sum,
           count(memory_clock) AS memory_clock_n,
           coalesce(sum(fan_speed), 0)::float8 AS fan_speed_sum,
           count(fan_speed) AS fan_speed_n,
           coalesce(sum(inference_fps), 0)::float8 AS inference_fps_sum,
           count(inference_fps) AS inference_fps_n,
           coalesce(sum(pcie_tx_throughput), 0)::float8 AS pcie_tx_throughput_sum,
           count(pcie_tx_throughput) AS pcie_tx_throughput_n,
           coalesce(sum(pcie_rx_throughput), 0)::float8 AS pcie_rx_throughput_sum,
           count(pcie_rx_throughput) AS pcie_rx_throughput_n,
           coalesce(sum(encoder_utilization), 0)::float8 AS encoder_utilization_sum,
           count(encoder_utilization) AS encoder_utilization_n,
           coalesce(sum(decoder_utilization), 0)::float8 AS decoder_utilization_sum,
           count(decoder_utilization) AS decoder_utilization_n,
           max(memory_total)::float8 AS memory_total_max,
           max(temperature)::float8 AS temperature_max,
           max(power_limit)::float8 AS power_limit_max
    FROM gpu_stats GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (host, gpu_index, bucket) DO UPDATE SET
        samples = r.samples + EXCLUDED.samples,
        gpu_utilization_sum = r.gpu_utilization_sum + EXCLUDED.gpu_utilization_sum, gpu_utilization_n = r.gpu_utilization_n + EXCLUDED.gpu_utilization_n,
        memory_bandwidth_utilization_sum = r.memory_bandwidth_utilization_sum + EXCLUDED.memory_bandwidth_utilization_sum, memory_bandwidth_utilization_n = r.memory_bandwidth_utilization_n + EXCLUDED.memory_bandwidth_utilization_n,
        memory_used_sum = r.memory_used_sum + EXCLUDED.memory_used_sum, memory_used_n = r.memory_used_n + EXCLUDED.memory_used_n,
        temperature_sum = r.temperature_sum + EXCLUDED.temperature_sum, temperature_n = r.temperature_n + EXCLUDED.temperature_n,
        power_usage_sum = r.power_usage_sum + EXCLUDED.power_usage_sum, power_usage_n = r.power_usage_n + EXCLUDED.power_usage_n,
        sm_clock_sum = r.sm_clock_sum + EXCLUDED.sm_clock_sum, sm_clock_n = r.sm_clock_n + EXCLUDED.sm_clock_n,
        memory_clock_sum = r.memory_clock_sum + EXCLUDED.memory_clock_sum, memory_clock_n = r.memory_clock_n + EXCLUDED.memory_clock_n,
        fan_speed_sum = r.fan_speed_sum + EXCLUDED.fan_speed_sum, fan_speed_n = r.fan_speed_n + EXCLUDED.fan_speed_n,
        inference_fps_sum = r.inference_fps_sum + EXCLUDED.inference_fps_sum, inference_fps_n = r.inference_fps_n + EXCLUDED.inference_fps_n,
        pcie_tx_throughput_sum = r.pcie_tx_throughput_sum + EXCLUDED.pcie_tx_throughput_sum, pcie_tx_throughput_n = r.pcie_tx_throughput_n + EXCLUDED.pcie_tx_throughput_n,
        pcie_rx_throughput_sum = r.pcie_rx_throughput_sum + EXCLUDED.pcie_rx_throughput_sum, pcie_rx_throughput_n = r.pcie_rx_throughput_n + EXCLUDED.pcie_rx_throughput_n,
        encoder_utilization_sum = r.encoder_utilization_sum + EXCLUDED.encoder_utilization_sum, encoder_utilization_n = r.encoder_utilization_n + EXCLUDED.encoder_utilization_n,
        decoder_utilization_sum = r.decoder_utilization_sum + EXCLUDED.decoder_utilization_sum, decoder_utilization_n = r.decoder_utilization_n + EXCLUDED.decoder_utilization_n,
        memory_total_max = greatest(r.memory_total_max, EXCLUDED.memory_total_max),
        temperature_max = greatest(r.temperature_max, EXCLUDED.temperature_max),
        power_limit_max = greatest(r.power_limit_max, EXCLUDED.power_limit_max);
END $$;

-- PostgreSQL allows transition tables only on single-event triggers: one per event.
CREATE TRIGGER gpu_stats_rollup_insert AFTER INSERT ON gpu_stats
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION monitoring_gpu_rollup_sync();
CREATE TRIGGER gpu_stats_rollup_update AFTER UPDATE ON gpu_stats
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION monitoring_gpu_rollup_sync();
CREATE TRIGGER gpu_stats_rollup_delete AFTER DELETE ON gpu_stats
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION monitoring_gpu_rollup_sync();
CREATE TRIGGER gpu_stats_rollup_truncate AFTER TRUNCATE ON gpu_stats
  FOR EACH STATEMENT EXECUTE FUNCTION monitoring_gpu_rollup_sync();

SELECT monitoring_gpu_rollup_rebuild();
"""

DROP_ROLLUP_SQL = r"""
DROP TRIGGER IF EXISTS gpu_stats_rollup_insert ON gpu_stats;
DROP TRIGGER IF EXISTS gpu_stats_rollup_update ON gpu_stats;
DROP TRIGGER IF EXISTS gpu_stats_rollup_delete ON gpu_stats;
DROP TRIGGER IF EXISTS gpu_stats_rollup_truncate ON gpu_stats;
DROP FUNCTION IF EXISTS monitoring_gpu_rollup_sync();
DROP FUNCTION IF EXISTS monitoring_gpu_rollup_rebuild();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0003_gpu_rollup"),
    ]

    operations = [
        migrations.RunSQL(ROLLUP_SQL, DROP_ROLLUP_SQL),
    ]
