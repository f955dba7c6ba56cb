//! Reference tables for enrichment (`config/reference/`, described in its README): safety regions,
//! municipalities with validity dates, successors of merged municipalities, MMT stations, and the
//! triage-code trauma table. Loaded once at startup; lookups are by code and local date.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// Why the reference tables could not be loaded; names the file, and the line and field where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// A file could not be opened or is not valid CSV.
    #[error("reference file {path}: {message}")]
    Read {
        /// The CSV file.
        path: PathBuf,
        /// The I/O or CSV error.
        message: String,
    },
    /// A field of a row is missing, empty or malformed.
    #[error("reference file {path}, line {line}, field `{field}`: {message}")]
    Field {
        /// The CSV file.
        path: PathBuf,
        /// Line number within the file (1 is the header).
        line: u64,
        /// Column name, e.g. `valid_from`.
        field: String,
        /// What is wrong with the value.
        message: String,
    },
}

/// A safety region (veiligheidsregio), a row of `regions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Region code, `VR01`-`VR25`.
    pub code: String,
    /// Region name, e.g. `Groningen`.
    pub name: String,
    /// Code of the province the region lies in, `PV20`-`PV31`.
    pub province_code: String,
    /// Province name.
    pub province_name: String,
    /// Municipalities in the current layout, as the source states it (checked).
    pub municipalities: u32,
}

/// One municipality over one period of validity, a row of `municipalities.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MunicipalityRow {
    /// CBS municipality code, `GM` plus four digits.
    pub code: String,
    /// Municipality name in that period.
    pub name: String,
    /// The safety region (`VRxx`) the municipality belonged to in that period.
    pub region_code: String,
    /// First day of validity (inclusive).
    pub valid_from: NaiveDate,
    /// Exclusive; `None` while valid.
    pub valid_to: Option<NaiveDate>,
}

impl MunicipalityRow {
    /// True when `date` lies in `[valid_from, valid_to)`.
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| date < to)
    }
}

/// A merged municipality and the one it became part of, a row of `successors.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Successor {
    /// CBS code of the municipality that ceased to exist.
    pub code: String,
    /// Its name.
    pub name: String,
    /// CBS code of the municipality it merged into.
    pub successor: String,
    /// Date of the merger: from this day on the code belongs to `successor`.
    pub effective: NaiveDate,
}

/// An MMT station, a row of `mmt_stations.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    /// Normalised station name, e.g. `Amsterdam`; the `mmt_station_norm` column's value.
    pub name: String,
    /// Other names and call signs producers use for it (e.g. `Lifeliner 1`), matched case-insensitively.
    pub aliases: Vec<String>,
    /// First day the station operates (inclusive).
    pub start: NaiveDate,
    /// Day it stopped operating (exclusive); `None` while it operates.
    pub end: Option<NaiveDate>,
}

/// All reference tables.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// Safety regions by code (`VRxx`).
    pub regions: HashMap<String, Region>,
    /// Rows per code, sorted by `valid_from`.
    pub municipalities: HashMap<String, Vec<MunicipalityRow>>,
    /// Merged municipalities by their old code.
    pub successors: HashMap<String, Successor>,
    /// The MMT stations, in file order.
    pub stations: Vec<Station>,
    /// Whether a triage code (upper case) indicates trauma, from `triage_trauma.csv`.
    pub triage_trauma: HashMap<String, bool>,
}

struct Rows {
    path: PathBuf,
    reader: csv::Reader<std::fs::File>,
    headers: csv::StringRecord,
}

impl Rows {
    fn open(dir: &Path, file: &str) -> Result<Rows, ReferenceError> {
        let path = dir.join(file);
        let mut reader = csv::Reader::from_path(&path).map_err(|e| ReferenceError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let headers = reader
            .headers()
            .map_err(|e| ReferenceError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?
            .clone();
        Ok(Rows {
            path,
            reader,
            headers,
        })
    }

    /// Each record as a field accessor.
    fn each(
        mut self,
        mut f: impl FnMut(&Record<'_>) -> Result<(), ReferenceError>,
    ) -> Result<(), ReferenceError> {
        for result in self.reader.records() {
            let record = result.map_err(|e| ReferenceError::Read {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
            let line = record.position().map_or(0, |p| p.line());
            f(&Record {
                path: &self.path,
                headers: &self.headers,
                record: &record,
                line,
            })?;
        }
        Ok(())
    }
}

struct Record<'a> {
    path: &'a Path,
    headers: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
    line: u64,
}

impl Record<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> ReferenceError {
        ReferenceError::Field {
            path: self.path.to_path_buf(),
            line: self.line,
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn str(&self, field: &str) -> Result<String, ReferenceError> {
        let i = self
            .headers
            .iter()
            .position(|h| h == field)
            .ok_or_else(|| self.err(field, "column missing from the header"))?;
        Ok(self.record.get(i).unwrap_or_default().trim().to_string())
    }

    fn required(&self, field: &str) -> Result<String, ReferenceError> {
        let v = self.str(field)?;
        if v.is_empty() {
            return Err(self.err(field, "empty"));
        }
        Ok(v)
    }

    fn date(&self, field: &str) -> Result<NaiveDate, ReferenceError> {
        let v = self.required(field)?;
        NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map_err(|e| self.err(field, format!("{v:?} is not a YYYY-MM-DD date: {e}")))
    }

    fn opt_date(&self, field: &str) -> Result<Option<NaiveDate>, ReferenceError> {
        if self.str(field)?.is_empty() {
            Ok(None)
        } else {
            self.date(field).map(Some)
        }
    }

    fn municipality_code(&self, field: &str) -> Result<String, ReferenceError> {
        let v = self.required(field)?;
        if !crate::event::is_municipality_code(&v) {
            return Err(self.err(field, format!("{v:?} is not a CBS code (GM + 4 digits)")));
        }
        Ok(v)
    }
}

impl Reference {
    /// Load every table from `dir`. Errors name the file, line and field.
    pub fn load(dir: &Path) -> Result<Reference, ReferenceError> {
        let mut r = Reference::default();
        Rows::open(dir, "regions.csv")?.each(|rec| {
            let code = rec.required("region_code")?;
            let n = rec.required("municipalities")?;
            let region = Region {
                code: code.clone(),
                name: rec.required("region_name")?,
                province_code: rec.required("province_code")?,
                province_name: rec.required("province_name")?,
                municipalities: n
                    .parse()
                    .map_err(|_| rec.err("municipalities", format!("{n:?} is not a count")))?,
            };
            if r.regions.insert(code.clone(), region).is_some() {
                return Err(rec.err("region_code", format!("{code} appears twice")));
            }
            Ok(())
        })?;
        Rows::open(dir, "municipalities.csv")?.each(|rec| {
            let row = MunicipalityRow {
                code: rec.municipality_code("code")?,
                name: rec.required("name")?,
                region_code: rec.required("region_code")?,
                valid_from: rec.date("valid_from")?,
                valid_to: rec.opt_date("valid_to")?,
            };
            if row.valid_to.is_some_and(|to| to <= row.valid_from) {
                return Err(rec.err("valid_to", "must be after valid_from"));
            }
            r.municipalities
                .entry(row.code.clone())
                .or_default()
                .push(row);
            Ok(())
        })?;
        for rows in r.municipalities.values_mut() {
            rows.sort_by_key(|m| m.valid_from);
        }
        Rows::open(dir, "successors.csv")?.each(|rec| {
            let s = Successor {
                code: rec.municipality_code("code")?,
                name: rec.required("name")?,
                successor: rec.municipality_code("successor_code")?,
                effective: rec.date("effective_date")?,
            };
            if r.successors.insert(s.code.clone(), s).is_some() {
                return Err(rec.err("code", "appears twice"));
            }
            Ok(())
        })?;
        Rows::open(dir, "mmt_stations.csv")?.each(|rec| {
            let start = rec.date("start_date")?;
            let end = rec.opt_date("end_date")?;
            if end.is_some_and(|e| e <= start) {
                return Err(rec.err("end_date", "must be after start_date"));
            }
            r.stations.push(Station {
                name: rec.required("station")?,
                aliases: rec
                    .str("aliases")?
                    .split(';')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect(),
                start,
                end,
            });
            Ok(())
        })?;
        Rows::open(dir, "triage_trauma.csv")?.each(|rec| {
            let code = rec.required("triage_code")?;
            let trauma = match rec.required("trauma")?.as_str() {
                "1" => true,
                "0" => false,
                other => return Err(rec.err("trauma", format!("{other:?}: expected 0 or 1"))),
            };
            if r.triage_trauma
                .insert(code.to_ascii_uppercase(), trauma)
                .is_some()
            {
                return Err(rec.err("triage_code", format!("{code} appears twice")));
            }
            Ok(())
        })?;
        Ok(r)
    }

    /// The municipality row valid for `code` on `date`, with its region.
    pub fn municipality_on(
        &self,
        code: &str,
        date: NaiveDate,
    ) -> Option<(&MunicipalityRow, &Region)> {
        let row = self
            .municipalities
            .get(code)?
            .iter()
            .find(|m| m.valid_on(date))?;
        let region = self.regions.get(&row.region_code)?;
        Some((row, region))
    }

    /// The municipality `code` belongs to on `date`, following successors (merged municipalities).
    pub fn current_code(&self, code: &str, date: NaiveDate) -> String {
        let mut current = code.to_string();
        let mut seen = HashSet::new();
        while let Some(s) = self.successors.get(&current) {
            if s.effective > date || !seen.insert(current.clone()) {
                break;
            }
            current = s.successor.clone();
        }
        current
    }

    /// The station a producer's name refers to (name or alias, case-insensitive), if it
    /// operates on `date`.
    pub fn station_on(&self, raw: &str, date: NaiveDate) -> Option<&str> {
        let key = raw.trim();
        self.stations
            .iter()
            .find(|s| {
                s.name.eq_ignore_ascii_case(key)
                    || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
            })
            .filter(|s| s.start <= date && s.end.is_none_or(|e| date < e))
            .map(|s| s.name.as_str())
    }

    /// Trauma per the triage table; `None` for a code it does not list.
    pub fn triage_trauma(&self, code: &str) -> Option<bool> {
        self.triage_trauma
            .get(&code.trim().to_ascii_uppercase())
            .copied()
    }

    /// Consistency problems (empty when the tables are sound).
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (code, rows) in &self.municipalities {
            for m in rows {
                if !self.regions.contains_key(&m.region_code) {
                    problems.push(format!(
                        "municipality {code}: unknown region {}",
                        m.region_code
                    ));
                }
            }
            for pair in rows.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                match a.valid_to {
                    None => problems.push(format!(
                        "municipality {code}: row from {} is open-ended but another starts {}",
                        a.valid_from, b.valid_from
                    )),
                    Some(to) if to > b.valid_from => problems.push(format!(
                        "municipality {code}: rows overlap ({}..{} and from {})",
                        a.valid_from, to, b.valid_from
                    )),
                    Some(to) if to < b.valid_from => problems.push(format!(
                        "municipality {code}: gap between {to} and {}",
                        b.valid_from
                    )),
                    _ => {}
                }
            }
        }
        // The current layout agrees with the regions' stated sizes.
        let mut per_region: HashMap<&str, u32> = HashMap::new();
        for rows in self.municipalities.values() {
            if let Some(last) = rows.last() {
                if last.valid_to.is_none() {
                    *per_region.entry(last.region_code.as_str()).or_default() += 1;
                }
            }
        }
        for region in self.regions.values() {
            let n = per_region.get(region.code.as_str()).copied().unwrap_or(0);
            if n != region.municipalities {
                problems.push(format!(
                    "region {} ({}): {n} current municipalities, the regions table says {}",
                    region.code, region.name, region.municipalities
                ));
            }
        }
        // Successor chains end in a current municipality, and the merged one ends that day.
        for s in self.successors.values() {
            let end = self.current_code(&s.code, NaiveDate::MAX);
            let current = self
                .municipalities
                .get(&end)
                .and_then(|rows| rows.last())
                .is_some_and(|r| r.valid_to.is_none());
            if !current {
                problems.push(format!(
                    "successor chain from {} ({}) ends in {end}, which is not a current municipality",
                    s.code, s.name
                ));
            }
            if let Some(rows) = self.municipalities.get(&s.code) {
                let last_to = rows.last().and_then(|r| r.valid_to);
                if last_to != Some(s.effective) {
                    problems.push(format!(
                        "municipality {} merges on {} but its rows end {:?}",
                        s.code, s.effective, last_to
                    ));
                }
            }
        }
        // Station names and aliases are unambiguous.
        let mut names = HashSet::new();
        for s in &self.stations {
            for n in std::iter::once(&s.name).chain(&s.aliases) {
                if !names.insert(n.to_ascii_lowercase()) {
                    problems.push(format!("MMT station name or alias {n:?} is used twice"));
                }
            }
        }
        problems.sort();
        problems
    }

    /// Counts for the `reference check` summary.
    pub fn summary(&self) -> String {
        let current = self
            .municipalities
            .values()
            .filter(|rows| rows.last().is_some_and(|r| r.valid_to.is_none()))
            .count();
        format!(
            "{} regions, {} municipalities ({} current), {} successors, {} MMT stations, {} triage codes",
            self.regions.len(),
            self.municipalities.len(),
            current,
            self.successors.len(),
            self.stations.len(),
            self.triage_trauma.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference")
    }

    /// A copy of the shipped tables with one file's text changed.
    fn with_edit(file: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(shipped()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let text = if name == file { edit(text) } else { text };
            std::fs::write(dir.path().join(&name), text).unwrap();
        }
        dir
    }

    #[test]
    fn shipped_tables_pass_the_check() {
        let r = Reference::load(&shipped()).unwrap();
        assert_eq!(r.check(), Vec::<String>::new());
        assert_eq!(r.regions.len(), 25);
        let current = r
            .municipalities
            .values()
            .filter(|rows| rows.last().unwrap().valid_to.is_none())
            .count();
        assert_eq!(current, 342);
    }

    #[test]
    fn the_check_finds_each_kind_of_problem() {
        type Case = (&'static str, fn(String) -> String, &'static str);
        let cases: [Case; 6] = [
            (
                "municipalities.csv",
                |t| {
                    t.replace(
                        "GM0014,Groningen,VR01,2022-01-01,",
                        "GM0014,Groningen,VR99,2022-01-01,",
                    )
                },
                "unknown region VR99",
            ),
            (
                "municipalities.csv",
                |t| t + "GM0014,Groningen,VR01,2021-01-01,2022-02-01\n",
                "rows overlap",
            ),
            (
                "municipalities.csv",
                |t| t + "GM0034,Almere,VR25,2020-01-01,2021-01-01\n",
                "gap between 2021-01-01 and 2022-01-01",
            ),
            (
                "successors.csv",
                |t| t + "GM0999,Nergens,GM0998,2022-01-01\n",
                "ends in GM0998, which is not a current municipality",
            ),
            (
                "successors.csv",
                |t| {
                    t.replace(
                        "GM0457,Weesp,GM0363,2022-03-24",
                        "GM0457,Weesp,GM0363,2022-04-01",
                    )
                },
                "merges on 2022-04-01 but its rows end",
            ),
            (
                "regions.csv",
                |t| {
                    t.replace(
                        "VR25,Flevoland,PV24,Flevoland,6",
                        "VR25,Flevoland,PV24,Flevoland,7",
                    )
                },
                "6 current municipalities, the regions table says 7",
            ),
        ];
        for (file, edit, want) in cases {
            let dir = with_edit(file, edit);
            let problems = Reference::load(dir.path()).unwrap().check();
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{file}: want {want:?} in {problems:?}"
            );
        }
    }

    #[test]
    fn load_errors_name_file_line_and_field() {
        let dir = with_edit("municipalities.csv", |t| t + "GM12,Kort,VR01,2022-01-01,\n");
        let err = Reference::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("municipalities.csv")
                && err.contains("field `code`")
                && err.contains("line 348"),
            "{err}"
        );
        let dir = with_edit("triage_trauma.csv", |t| t + "X,maybe,x\n");
        let err = Reference::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("triage_trauma.csv") && err.contains("`trauma`"),
            "{err}"
        );
        let dir = with_edit("triage_trauma.csv", |t| t + "BURN,1,again\n");
        let err = Reference::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
        let err = Reference::load(Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/regions.csv"), "{err}");
    }
}
