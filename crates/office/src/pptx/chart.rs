//! A native chart part (`c:chartSpace`) with its data cached for viewers, and the small workbook embedded
//! beside it that PowerPoint opens for "Edit Data".

use std::io::Write;

use zip::write::SimpleFileOptions;

use super::templates::{CHART_PALETTE, XML_HEADER};
use super::xml::escape;
use super::{ChartKind, ChartSpec};

/// The chart's XML; `workbook_rel` is the relationship id of the embedded workbook.
pub fn chart_xml(chart: &ChartSpec, workbook_rel: &str) -> String {
    let series: String =
        chart.series.iter().enumerate().map(|(index, series)| series_xml(chart, index, series)).collect();
    let plot = match chart.kind {
        ChartKind::Column | ChartKind::Bar => {
            let direction = if chart.kind == ChartKind::Column { "col" } else { "bar" };
            format!(
                r#"<c:barChart><c:barDir val="{direction}"/><c:grouping val="clustered"/><c:varyColors val="0"/>{series}<c:gapWidth val="80"/><c:axId val="50001"/><c:axId val="50002"/></c:barChart>{axes}"#,
                axes = axes(chart.kind)
            )
        }
        ChartKind::Line => format!(
            r#"<c:lineChart><c:grouping val="standard"/><c:varyColors val="0"/>{series}<c:marker val="1"/><c:axId val="50001"/><c:axId val="50002"/></c:lineChart>{axes}"#,
            axes = axes(chart.kind)
        ),
        ChartKind::Pie => {
            format!(r#"<c:pieChart><c:varyColors val="1"/>{series}<c:firstSliceAng val="0"/></c:pieChart>"#)
        }
    };
    let legend = if chart.series.len() > 1 || chart.kind == ChartKind::Pie {
        format!(r#"<c:legend><c:legendPos val="b"/><c:overlay val="0"/>{LABEL_TEXT}</c:legend>"#)
    } else {
        String::new()
    };
    format!(
        r#"{XML_HEADER}<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><c:date1904 val="0"/><c:roundedCorners val="0"/><c:chart><c:autoTitleDeleted val="1"/><c:plotArea><c:layout/>{plot}</c:plotArea>{legend}<c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart><c:spPr><a:noFill/><a:ln><a:noFill/></a:ln></c:spPr><c:txPr><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr sz="1400"><a:solidFill><a:schemeClr val="tx1"/></a:solidFill></a:defRPr></a:pPr><a:endParaRPr lang="en-US"/></a:p></c:txPr><c:externalData r:id="{workbook_rel}"><c:autoUpdate val="0"/></c:externalData></c:chartSpace>"#
    )
}

/// Text properties for axis labels and the legend: 16 pt, dark gray.
const LABEL_TEXT: &str = r#"<c:txPr><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr sz="1600"><a:solidFill><a:srgbClr val="4B5563"/></a:solidFill></a:defRPr></a:pPr><a:endParaRPr lang="en-US"/></a:p></c:txPr>"#;

/// A solid fill in a palette color.
fn fill(color: &str) -> String {
    format!(r#"<a:solidFill><a:srgbClr val="{color}"/></a:solidFill>"#)
}

/// The series' name as shown: `Series N` when none was given.
pub fn series_name(index: usize, name: &str) -> String {
    if name.trim().is_empty() { format!("Series {}", index + 1) } else { name.to_string() }
}

fn series_xml(chart: &ChartSpec, index: usize, series: &super::SeriesSpec) -> String {
    let count = chart.categories.len();
    let column = column_letter(index + 1);
    let last_row = count + 1;
    let name = escape(&series_name(index, &series.name));
    let color = CHART_PALETTE[index % CHART_PALETTE.len()];
    let categories: String = chart
        .categories
        .iter()
        .enumerate()
        .map(|(point, label)| format!(r#"<c:pt idx="{point}"><c:v>{}</c:v></c:pt>"#, escape(label)))
        .collect();
    let values: String = series
        .values
        .iter()
        .enumerate()
        .filter_map(|(point, value)| value.map(|value| format!(r#"<c:pt idx="{point}"><c:v>{value}</c:v></c:pt>"#)))
        .collect();
    let head = format!(
        r#"<c:idx val="{index}"/><c:order val="{index}"/><c:tx><c:strRef><c:f>Sheet1!${column}$1</c:f><c:strCache><c:ptCount val="1"/><c:pt idx="0"><c:v>{name}</c:v></c:pt></c:strCache></c:strRef></c:tx>"#
    );
    let data = format!(
        r#"<c:cat><c:strRef><c:f>Sheet1!$A$2:$A${last_row}</c:f><c:strCache><c:ptCount val="{count}"/>{categories}</c:strCache></c:strRef></c:cat><c:val><c:numRef><c:f>Sheet1!${column}$2:${column}${last_row}</c:f><c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="{count}"/>{values}</c:numCache></c:numRef></c:val>"#
    );
    match chart.kind {
        ChartKind::Column | ChartKind::Bar => format!(
            r#"<c:ser>{head}<c:spPr>{fill}<a:ln><a:noFill/></a:ln></c:spPr><c:invertIfNegative val="0"/>{data}</c:ser>"#,
            fill = fill(color)
        ),
        ChartKind::Line => format!(
            r#"<c:ser>{head}<c:spPr><a:ln w="31750" cap="rnd">{fill}<a:round/></a:ln></c:spPr><c:marker><c:symbol val="circle"/><c:size val="8"/><c:spPr>{fill}<a:ln w="9525">{fill}</a:ln></c:spPr></c:marker>{data}<c:smooth val="0"/></c:ser>"#,
            fill = fill(color)
        ),
        ChartKind::Pie => {
            let points: String = (0..count)
                .map(|point| {
                    format!(
                        r#"<c:dPt><c:idx val="{point}"/><c:bubble3D val="0"/><c:spPr>{fill}<a:ln w="19050"><a:solidFill><a:srgbClr val="FFFFFF"/></a:solidFill></a:ln></c:spPr></c:dPt>"#,
                        fill = fill(CHART_PALETTE[point % CHART_PALETTE.len()])
                    )
                })
                .collect();
            let labels = r#"<c:dLbls><c:numFmt formatCode="0%" sourceLinked="0"/><c:spPr><a:noFill/><a:ln><a:noFill/></a:ln></c:spPr><c:txPr><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr sz="1400" b="1"><a:solidFill><a:srgbClr val="FFFFFF"/></a:solidFill></a:defRPr></a:pPr><a:endParaRPr lang="en-US"/></a:p></c:txPr><c:dLblPos val="ctr"/><c:showLegendKey val="0"/><c:showVal val="0"/><c:showCatName val="0"/><c:showSerName val="0"/><c:showPercent val="1"/><c:showBubbleSize val="0"/><c:showLeaderLines val="0"/></c:dLbls>"#;
            format!(r#"<c:ser>{head}{points}{labels}{data}</c:ser>"#)
        }
    }
}

/// The category and value axes; a bar chart lists its first category on top, values along the bottom.
fn axes(kind: ChartKind) -> String {
    let (category_position, value_position, orientation, value_crosses) = match kind {
        ChartKind::Bar => ("l", "b", "maxMin", "max"),
        _ => ("b", "l", "minMax", "autoZero"),
    };
    let line = r#"<c:spPr><a:ln w="9525"><a:solidFill><a:srgbClr val="9CA3AF"/></a:solidFill></a:ln></c:spPr>"#;
    format!(
        r#"<c:catAx><c:axId val="50001"/><c:scaling><c:orientation val="{orientation}"/></c:scaling><c:delete val="0"/><c:axPos val="{category_position}"/><c:numFmt formatCode="General" sourceLinked="1"/><c:majorTickMark val="none"/><c:minorTickMark val="none"/><c:tickLblPos val="nextTo"/>{line}{LABEL_TEXT}<c:crossAx val="50002"/><c:crosses val="autoZero"/><c:auto val="1"/><c:lblAlgn val="ctr"/><c:lblOffset val="100"/><c:noMultiLvlLbl val="0"/></c:catAx><c:valAx><c:axId val="50002"/><c:scaling><c:orientation val="minMax"/></c:scaling><c:delete val="0"/><c:axPos val="{value_position}"/><c:majorGridlines><c:spPr><a:ln w="9525"><a:solidFill><a:srgbClr val="E5E7EB"/></a:solidFill></a:ln></c:spPr></c:majorGridlines><c:numFmt formatCode="General" sourceLinked="1"/><c:majorTickMark val="none"/><c:minorTickMark val="none"/><c:tickLblPos val="nextTo"/><c:spPr><a:ln><a:noFill/></a:ln></c:spPr>{LABEL_TEXT}<c:crossAx val="50001"/><c:crosses val="{value_crosses}"/><c:crossBetween val="between"/></c:valAx>"#
    )
}

/// The spreadsheet column of a 0-based index: 0 is `A`, 25 `Z`, 26 `AA`.
pub fn column_letter(index: usize) -> String {
    let mut letters = Vec::new();
    let mut rest = index + 1;
    while rest > 0 {
        let digit = (rest - 1) % 26;
        letters.push(char::from(b'A' + digit as u8));
        rest = (rest - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// The embedded workbook: categories in column A, one series per column from B, names in row 1, the cells
/// the chart's formulas point at.
pub fn workbook(chart: &ChartSpec) -> Result<Vec<u8>, zip::result::ZipError> {
    let text_cell = |reference: String, text: &str| {
        format!(r#"<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#, escape(text))
    };
    let mut rows = String::new();
    let mut header = String::new();
    for (index, series) in chart.series.iter().enumerate() {
        header.push_str(&text_cell(format!("{}1", column_letter(index + 1)), &series_name(index, &series.name)));
    }
    rows.push_str(&format!(r#"<row r="1">{header}</row>"#));
    for (point, category) in chart.categories.iter().enumerate() {
        let row = point + 2;
        let mut cells = text_cell(format!("A{row}"), category);
        for (index, series) in chart.series.iter().enumerate() {
            if let Some(Some(value)) = series.values.get(point) {
                cells.push_str(&format!(r#"<c r="{}{row}"><v>{value}</v></c>"#, column_letter(index + 1)));
            }
        }
        rows.push_str(&format!(r#"<row r="{row}">{cells}</row>"#));
    }
    let sheet = format!(
        r#"{XML_HEADER}<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
    );
    let parts: [(&str, String); 6] = [
        (
            "[Content_Types].xml",
            format!(
                r#"{XML_HEADER}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#
            ),
        ),
        (
            "_rels/.rels",
            format!(
                r#"{XML_HEADER}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"{XML_HEADER}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"{XML_HEADER}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#
            ),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
        (
            "xl/styles.xml",
            format!(
                r#"{XML_HEADER}<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"#
            ),
        ),
    ];
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in parts {
        writer.start_file(name, options)?;
        writer.write_all(content.as_bytes())?;
    }
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_follow_spreadsheet_naming() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }
}
