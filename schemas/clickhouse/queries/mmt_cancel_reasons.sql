-- Report query: every row of the mmt_cancel_reasons view (definitions in docs/rollups.md).
SELECT * FROM {db}.mmt_cancel_reasons ORDER BY year, cancels DESC, cancel_reason
