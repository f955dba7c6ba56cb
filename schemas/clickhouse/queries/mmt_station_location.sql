-- Report query: the mmt_station_location view (definitions in docs/rollups.md), columns named
-- and cast to the types `report::factsheet::StationRow` reads, in its field order.
SELECT
    toInt32(year) AS year,
    toString(station) AS station,
    toString(region_code) AS region_code,
    toUInt64(deployments) AS deployments,
    toUInt64(cancels) AS cancels
FROM {db}.mmt_station_location
ORDER BY year, station, region_code
