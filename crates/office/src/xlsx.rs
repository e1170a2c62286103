//! Workbooks: `write_xlsx` (every formula evaluated, errors scanned, cached values written) and `read_xlsx`
//! (xlsx, xls, ods as markdown tables).
