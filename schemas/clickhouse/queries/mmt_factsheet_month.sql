-- Report query: every row of the mmt_factsheet_month view (definitions in docs/rollups.md).
SELECT * FROM {db}.mmt_factsheet_month ORDER BY year, month
