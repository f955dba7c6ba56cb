-- Report query: every row of the mmt_factsheet_year view (definitions in docs/rollups.md).
SELECT * FROM {db}.mmt_factsheet_year ORDER BY year
