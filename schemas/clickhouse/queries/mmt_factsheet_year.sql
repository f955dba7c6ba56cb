-- Report query: the mmt_factsheet_year view (definitions in docs/rollups.md), columns named and
-- cast to the types `report::factsheet::YearFigures` reads, in its field order.
SELECT
    toInt32(year) AS year,
    toUInt64(calls) AS calls,
    toFloat64(calls_per_day) AS calls_per_day,
    toUInt64(deployments) AS deployments,
    toFloat64(deployments_per_day) AS deployments_per_day,
    toUInt64(cancels) AS cancels,
    toFloat64(deployment_pct) AS deployment_pct,
    toUInt64(helicopter_calls) AS helicopter_calls,
    toUInt64(car_calls) AS car_calls,
    toFloat64(helicopter_pct) AS helicopter_pct,
    toFloat64(car_pct) AS car_pct,
    toUInt64(primary_calls) AS primary_calls,
    toUInt64(secondary_calls) AS secondary_calls,
    toFloat64(primary_pct) AS primary_pct,
    toUInt64(trauma_deployments) AS trauma_deployments,
    toFloat64(trauma_pct) AS trauma_pct,
    toUInt64(child_deployments) AS child_deployments,
    toFloat64(child_pct) AS child_pct,
    toUInt64(helicopter_transports) AS helicopter_transports,
    toFloat64(helicopter_transport_pct) AS helicopter_transport_pct,
    toUInt64(ambulance_accompanied_deployments) AS ambulance_accompanied_deployments,
    toFloat64(ambulance_accompanied_pct) AS ambulance_accompanied_pct
FROM {db}.mmt_factsheet_year
ORDER BY year
