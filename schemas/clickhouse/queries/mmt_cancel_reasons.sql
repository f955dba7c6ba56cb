-- Report query: the mmt_cancel_reasons view (definitions in docs/rollups.md), columns named and
-- cast to the types `report::factsheet::ReasonRow` reads, in its field order.
SELECT
    toInt32(year) AS year,
    toString(cancel_reason) AS cancel_reason,
    toUInt64(cancels) AS cancels
FROM {db}.mmt_cancel_reasons
ORDER BY year, cancels DESC, cancel_reason
