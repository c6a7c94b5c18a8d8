# A per-minute rollup of gpu_stats for the GPU history charts (beyond the seed).
#
# Sums, non-NULL counts and maxima of the charted columns per (host, gpu_index,
# minute). Not a Django model: nothing edits or browses it; the triggers of 0004
# keep it in step with gpu_stats and monitoring.services.rollup reads it. Charts of
# 6 h and longer read it instead of the raw samples, so their cost follows the
# number of minutes in the range, not the sampling rate.

from django.db import migrations

CREATE_SQL = """
CREATE TABLE monitoring_gpu_rollup (
    host varchar(255) NOT NULL,
    gpu_index integer NOT NULL,
    bucket timestamptz NOT NULL,
    samples integer NOT NULL DEFAULT 0,
    gpu_utilization_sum double precision NOT NULL DEFAULT 0,
    gpu_utilization_n integer NOT NULL DEFAULT 0,
    memory_bandwidth_utilization_sum double precision NOT NULL DEFAULT 0,
    memory_bandwidth_utilization_n integer NOT NULL DEFAULT 0,
    memory_used_sum double precision NOT NULL DEFAULT 0,
    memory_used_n integer NOT NULL DEFAULT 0,
    temperature_sum double precision NOT NULL DEFAULT 0,
    temperature_n integer NOT NULL DEFAULT 0,
    power_usage_sum double precision NOT NULL DEFAULT 0,
    power_usage_n integer NOT NULL DEFAULT 0,
    sm_clock_sum double precision NOT NULL DEFAULT 0,
    sm_clock_n integer NOT NULL DEFAULT 0,
    memory_clock_sum double precision NOT NULL DEFAULT 0,
    memory_clock_n integer NOT NULL DEFAULT 0,
    fan_speed_sum double precision NOT NULL DEFAULT 0,
    fan_speed_n integer NOT NULL DEFAULT 0,
    inference_fps_sum double precision NOT NULL DEFAULT 0,
    inference_fps_n integer NOT NULL DEFAULT 0,
    pcie_tx_throughput_sum double precision NOT NULL DEFAULT 0,
    pcie_tx_throughput_n integer NOT NULL DEFAULT 0,
    pcie_rx_throughput_sum double precision NOT NULL DEFAULT 0,
    pcie_rx_throughput_n integer NOT NULL DEFAULT 0,
    encoder_utilization_sum double precision NOT NULL DEFAULT 0,
    encoder_utilization_n integer NOT NULL DEFAULT 0,
    decoder_utilization_sum double precision NOT NULL DEFAULT 0,
    decoder_utilization_n integer NOT NULL DEFAULT 0,
    memory_total_max double precision,
    temperature_max double precision,
    power_limit_max double precision,
    -- Also the index of every chart query: one GPU, a range of minutes.
    CONSTRAINT uq_gpu_rollup_gpu_bucket PRIMARY KEY (host, gpu_index, bucket)
);
"""

DROP_SQL = "DROP TABLE IF EXISTS monitoring_gpu_rollup;"


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0002_sampler_status"),
    ]

    operations = [
        migrations.RunSQL(CREATE_SQL, DROP_SQL),
    ]
