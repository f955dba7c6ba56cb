-- Report query: the mmt_factsheet_month view (definitions in docs/rollups.md), columns named and
-- cast to the types `report::factsheet::MonthFigures` reads, in its field order.
SELECT
    toInt32(year) AS year,
    toUInt32(month) AS month,
    toUInt64(calls) AS calls,
    toUInt64(deployments) AS deployments,
    toUInt64(cancels) AS cancels
FROM {db}.mmt_factsheet_month
ORDER BY year, month
