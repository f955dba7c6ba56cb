-- Report query: every row of the mmt_station_location view (definitions in docs/rollups.md).
SELECT * FROM {db}.mmt_station_location ORDER BY year, station, region_code
