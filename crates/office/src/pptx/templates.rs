//! The fixed parts of every deck: theme, slide master, layouts, notes master and the package's small
//! property parts. The parts that depend on the slides are built in `write.rs` and `chart.rs`.
//!
//! Geometry is in EMU (914,400 to the inch) on a 13.333 × 7.5 inch (16:9) slide.

/// Slide width: 13.333 inches.
pub const SLIDE_WIDTH: i64 = 12_192_000;
/// Slide height: 7.5 inches.
pub const SLIDE_HEIGHT: i64 = 6_858_000;
/// Left and right margin of every layout: 0.6 inch.
pub const MARGIN_X: i64 = 548_640;
/// Width between the margins.
pub const CONTENT_WIDTH: i64 = SLIDE_WIDTH - 2 * MARGIN_X;
/// Top of the title box on content slides.
pub const TITLE_Y: i64 = 320_040;
/// Top of the content area under a title: 1.6 inches.
pub const BODY_Y: i64 = 1_463_040;
/// Top of the content area on a slide without a title: 0.5 inch.
pub const BODY_Y_UNTITLED: i64 = 457_200;
/// Bottom of the content area: 7.05 inches.
pub const BODY_BOTTOM: i64 = 6_446_520;
/// Gap between the two columns of `two-column`.
pub const COLUMN_GAP: i64 = 457_200;
/// Width of one column of `two-column`.
pub const COLUMN_WIDTH: i64 = (CONTENT_WIDTH - COLUMN_GAP) / 2;

/// Chart series colors, the accent first; repeats after ten.
pub const CHART_PALETTE: [&str; 10] =
    ["2563EB", "F59E0B", "10B981", "EF4444", "8B5CF6", "64748B", "0EA5E9", "EC4899", "84CC16", "A16207"];

/// Namespaces declared on every slide-like part.
pub const NAMESPACES: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main""#;

/// The XML declaration every part starts with.
pub const XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

/// The opening of a shape tree (the group every slide-like part's shapes sit in).
pub const SP_TREE_START: &str = r#"<p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/><a:chOff x="0" y="0"/><a:chExt cx="0" cy="0"/></a:xfrm></p:grpSpPr>"#;

/// The theme of the slides: a white background, near-black text, one blue accent, Calibri.
pub const THEME: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<a:theme xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" name="Errand"><a:themeElements><a:clrScheme name="Errand"><a:dk1><a:srgbClr val="1F2937"/></a:dk1><a:lt1><a:srgbClr val="FFFFFF"/></a:lt1><a:dk2><a:srgbClr val="4B5563"/></a:dk2><a:lt2><a:srgbClr val="F3F4F6"/></a:lt2><a:accent1><a:srgbClr val="2563EB"/></a:accent1><a:accent2><a:srgbClr val="F59E0B"/></a:accent2><a:accent3><a:srgbClr val="10B981"/></a:accent3><a:accent4><a:srgbClr val="EF4444"/></a:accent4><a:accent5><a:srgbClr val="8B5CF6"/></a:accent5><a:accent6><a:srgbClr val="64748B"/></a:accent6><a:hlink><a:srgbClr val="2563EB"/></a:hlink><a:folHlink><a:srgbClr val="7C3AED"/></a:folHlink></a:clrScheme><a:fontScheme name="Errand"><a:majorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:cs typeface=""/></a:majorFont><a:minorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:cs typeface=""/></a:minorFont></a:fontScheme><a:fmtScheme name="Errand"><a:fillStyleLst><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"><a:tint val="50000"/></a:schemeClr></a:solidFill><a:solidFill><a:schemeClr val="phClr"><a:shade val="80000"/></a:schemeClr></a:solidFill></a:fillStyleLst><a:lnStyleLst><a:ln w="9525" cap="flat" cmpd="sng" algn="ctr"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:prstDash val="solid"/></a:ln><a:ln w="19050" cap="flat" cmpd="sng" algn="ctr"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:prstDash val="solid"/></a:ln><a:ln w="28575" cap="flat" cmpd="sng" algn="ctr"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:prstDash val="solid"/></a:ln></a:lnStyleLst><a:effectStyleLst><a:effectStyle><a:effectLst/></a:effectStyle><a:effectStyle><a:effectLst/></a:effectStyle><a:effectStyle><a:effectLst/></a:effectStyle></a:effectStyleLst><a:bgFillStyleLst><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"><a:tint val="95000"/></a:schemeClr></a:solidFill><a:solidFill><a:schemeClr val="phClr"><a:shade val="90000"/></a:schemeClr></a:solidFill></a:bgFillStyleLst></a:fmtScheme></a:themeElements><a:objectDefaults/><a:extraClrSchemeLst/></a:theme>
"#;

/// The color map of the master and the notes master: background light, text dark.
const CLR_MAP: &str = r#"<p:clrMap bg1="lt1" tx1="dk1" bg2="lt2" tx2="dk2" accent1="accent1" accent2="accent2" accent3="accent3" accent4="accent4" accent5="accent5" accent6="accent6" hlink="hlink" folHlink="folHlink"/>"#;

/// One level of the master's body style: left margin and hanging indent (EMU), size (1/100 pt), bullet.
fn body_level(level: usize, margin: i64, indent: i64, size: u32, bullet: &str) -> String {
    format!(
        r#"<a:lvl{n}pPr marL="{margin}" indent="{indent}" algn="l" defTabSz="914400" rtl="0" eaLnBrk="1" latinLnBrk="0" hangingPunct="1"><a:lnSpc><a:spcPct val="100000"/></a:lnSpc><a:spcBef><a:spcPts val="{before}"/></a:spcBef><a:buClr><a:schemeClr val="accent1"/></a:buClr><a:buFont typeface="Arial" panose="020B0604020202020204" pitchFamily="34" charset="0"/><a:buChar char="{bullet}"/><a:defRPr sz="{size}" kern="1200"><a:solidFill><a:schemeClr val="tx1"/></a:solidFill><a:latin typeface="+mn-lt"/><a:ea typeface="+mn-ea"/><a:cs typeface="+mn-cs"/></a:defRPr></a:lvl{n}pPr>"#,
        n = level + 1,
        before = if level == 0 { 1000 } else { 500 },
    )
}

/// Font sizes of bullet levels 0 to 4, in 1/100 pt (the master's body style).
pub const BULLET_SIZES: [u32; 5] = [2400, 2000, 1800, 1600, 1600];
/// Left margins of bullet levels 0 to 4, in EMU.
const BULLET_MARGINS: [i64; 5] = [342_900, 742_950, 1_143_000, 1_600_200, 2_057_400];
/// Bullet characters of levels 0 to 4.
const BULLET_CHARS: [&str; 5] = ["•", "–", "•", "–", "»"];

/// A plain level style (no bullet) for the title, other text and the notes.
fn plain_level(level: usize, size: u32) -> String {
    format!(
        r#"<a:lvl{n}pPr marL="{margin}" algn="l" defTabSz="914400" rtl="0" eaLnBrk="1" latinLnBrk="0" hangingPunct="1"><a:defRPr sz="{size}" kern="1200"><a:solidFill><a:schemeClr val="tx1"/></a:solidFill><a:latin typeface="+mn-lt"/><a:ea typeface="+mn-ea"/><a:cs typeface="+mn-cs"/></a:defRPr></a:lvl{n}pPr>"#,
        n = level + 1,
        margin = level as i64 * 457_200,
    )
}

/// The `a:xfrm` of a box.
pub fn xfrm(x: i64, y: i64, width: i64, height: i64) -> String {
    format!(r#"<a:xfrm><a:off x="{x}" y="{y}"/><a:ext cx="{width}" cy="{height}"/></a:xfrm>"#)
}

/// A filled rectangle with no outline: the accent decorations.
fn accent_rect(id: u32, name: &str, x: i64, y: i64, width: i64, height: i64) -> String {
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="{name}"/><p:cNvSpPr/><p:nvPr userDrawn="1"/></p:nvSpPr><p:spPr>{}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:solidFill><a:schemeClr val="accent1"/></a:solidFill><a:ln><a:noFill/></a:ln></p:spPr><p:txBody><a:bodyPr rtlCol="0" anchor="ctr"/><a:lstStyle/><a:p><a:endParaRPr lang="en-US"/></a:p></p:txBody></p:sp>"#,
        xfrm(x, y, width, height)
    )
}

/// The slide master: title and body placeholders, a short accent bar under the title, and the text styles
/// (title 36 pt; bullets 24/20/18/16/16 pt with accent-colored bullets).
pub fn slide_master() -> String {
    let title_style = r#"<p:titleStyle><a:lvl1pPr algn="l" defTabSz="914400" rtl="0" eaLnBrk="1" latinLnBrk="0" hangingPunct="1"><a:lnSpc><a:spcPct val="90000"/></a:lnSpc><a:spcBef><a:spcPct val="0"/></a:spcBef><a:buNone/><a:defRPr sz="3600" b="1" kern="1200"><a:solidFill><a:schemeClr val="tx1"/></a:solidFill><a:latin typeface="+mj-lt"/><a:ea typeface="+mj-ea"/><a:cs typeface="+mj-cs"/></a:defRPr></a:lvl1pPr></p:titleStyle>"#;
    let body_levels: String = (0..5)
        .map(|level| body_level(level, BULLET_MARGINS[level], -285_750, BULLET_SIZES[level], BULLET_CHARS[level]))
        .collect();
    let other_levels: String = (0..5).map(|level| plain_level(level, 1800)).collect();
    format!(
        r#"{XML_HEADER}<p:sldMaster {NAMESPACES}><p:cSld><p:bg><p:bgRef idx="1001"><a:schemeClr val="bg1"/></p:bgRef></p:bg>{SP_TREE_START}<p:sp><p:nvSpPr><p:cNvPr id="2" name="Title Placeholder 1"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:spPr>{title_xfrm}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr><p:txBody><a:bodyPr vert="horz" lIns="91440" tIns="45720" rIns="91440" bIns="45720" rtlCol="0" anchor="b"><a:normAutofit/></a:bodyPr><a:lstStyle/><a:p><a:r><a:rPr lang="en-US"/><a:t>Click to edit the title</a:t></a:r></a:p></p:txBody></p:sp><p:sp><p:nvSpPr><p:cNvPr id="3" name="Text Placeholder 2"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="body" idx="1"/></p:nvPr></p:nvSpPr><p:spPr>{body_xfrm}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr><p:txBody><a:bodyPr vert="horz" lIns="91440" tIns="45720" rIns="91440" bIns="45720" rtlCol="0"><a:normAutofit/></a:bodyPr><a:lstStyle/><a:p><a:pPr lvl="0"/><a:r><a:rPr lang="en-US"/><a:t>First level</a:t></a:r></a:p><a:p><a:pPr lvl="1"/><a:r><a:rPr lang="en-US"/><a:t>Second level</a:t></a:r></a:p><a:p><a:pPr lvl="2"/><a:r><a:rPr lang="en-US"/><a:t>Third level</a:t></a:r></a:p></p:txBody></p:sp>{bar}</p:spTree></p:cSld>{CLR_MAP}<p:sldLayoutIdLst><p:sldLayoutId id="2147483649" r:id="rId1"/><p:sldLayoutId id="2147483650" r:id="rId2"/><p:sldLayoutId id="2147483651" r:id="rId3"/><p:sldLayoutId id="2147483652" r:id="rId4"/></p:sldLayoutIdLst><p:txStyles>{title_style}<p:bodyStyle>{body_levels}</p:bodyStyle><p:otherStyle>{other_levels}</p:otherStyle></p:txStyles></p:sldMaster>"#,
        title_xfrm = xfrm(MARGIN_X, TITLE_Y, CONTENT_WIDTH, 960_120),
        body_xfrm = xfrm(MARGIN_X, BODY_Y, CONTENT_WIDTH, BODY_BOTTOM - BODY_Y),
        bar = accent_rect(4, "Accent Bar", MARGIN_X + 91_440, 1_307_592, 822_960, 54_864),
    )
}

/// The layouts, in the order of the master's `sldLayoutIdLst` (`rId1`…`rId4`): their file number, name
/// and XML.
pub fn slide_layouts() -> [(usize, &'static str, String); 4] {
    [
        (1, "Title Slide", title_layout()),
        (2, "Title and Content", content_layout()),
        (3, "Two Content", two_content_layout()),
        (4, "Title Only", title_only_layout()),
    ]
}

/// Number of the layout file for each of our layouts.
pub const LAYOUT_TITLE: usize = 1;
/// `bullets`.
pub const LAYOUT_CONTENT: usize = 2;
/// `two-column`.
pub const LAYOUT_TWO_CONTENT: usize = 3;
/// `table`, `image`, `chart`.
pub const LAYOUT_TITLE_ONLY: usize = 4;

fn layout(kind: &str, name: &str, show_master_shapes: bool, shapes: &str) -> String {
    let show = if show_master_shapes { "" } else { r#" showMasterSp="0""# };
    format!(
        r#"{XML_HEADER}<p:sldLayout {NAMESPACES} type="{kind}" preserve="1"{show}><p:cSld name="{name}">{SP_TREE_START}{shapes}</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sldLayout>"#
    )
}

fn title_placeholder(id: u32) -> String {
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="Title {n}"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang="en-US"/><a:t>Click to edit the title</a:t></a:r></a:p></p:txBody></p:sp>"#,
        n = id - 1
    )
}

fn content_placeholder(id: u32, idx: u32, x: i64, width: i64) -> String {
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="Content Placeholder {n}"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph idx="{idx}"/></p:nvPr></p:nvSpPr><p:spPr>{xfrm}</p:spPr><p:txBody><a:bodyPr><a:normAutofit/></a:bodyPr><a:lstStyle/><a:p><a:pPr lvl="0"/><a:r><a:rPr lang="en-US"/><a:t>Click to add text</a:t></a:r></a:p></p:txBody></p:sp>"#,
        n = id - 1,
        xfrm = xfrm(x, BODY_Y, width, BODY_BOTTOM - BODY_Y),
    )
}

/// Title slide: a large title low on the slide, an accent bar, the subtitle under it, and an accent band at
/// the bottom; the master's shapes are hidden.
fn title_layout() -> String {
    let shapes = format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="Title 1"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="ctrTitle"/></p:nvPr></p:nvSpPr><p:spPr>{title_xfrm}</p:spPr><p:txBody><a:bodyPr anchor="b"><a:normAutofit/></a:bodyPr><a:lstStyle><a:lvl1pPr algn="l"><a:defRPr sz="4400"/></a:lvl1pPr></a:lstStyle><a:p><a:r><a:rPr lang="en-US"/><a:t>Click to edit the title</a:t></a:r></a:p></p:txBody></p:sp><p:sp><p:nvSpPr><p:cNvPr id="3" name="Subtitle 2"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="subTitle" idx="1"/></p:nvPr></p:nvSpPr><p:spPr>{subtitle_xfrm}</p:spPr><p:txBody><a:bodyPr anchor="t"><a:normAutofit/></a:bodyPr><a:lstStyle><a:lvl1pPr marL="0" indent="0" algn="l"><a:buNone/><a:defRPr sz="2400"><a:solidFill><a:schemeClr val="tx2"/></a:solidFill></a:defRPr></a:lvl1pPr></a:lstStyle><a:p><a:r><a:rPr lang="en-US"/><a:t>Click to edit the subtitle</a:t></a:r></a:p></p:txBody></p:sp>{bar}{band}"#,
        title_xfrm = xfrm(MARGIN_X, 1_645_920, CONTENT_WIDTH, 1_920_240),
        subtitle_xfrm = xfrm(MARGIN_X, 3_840_480, CONTENT_WIDTH, 1_371_600),
        bar = accent_rect(4, "Accent Bar", MARGIN_X + 91_440, 3_657_600, 1_097_280, 64_008),
        band = accent_rect(5, "Accent Band", 0, SLIDE_HEIGHT - 182_880, SLIDE_WIDTH, 182_880),
    );
    layout("title", "Title Slide", false, &shapes)
}

fn content_layout() -> String {
    let shapes = format!("{}{}", title_placeholder(2), content_placeholder(3, 1, MARGIN_X, CONTENT_WIDTH));
    layout("obj", "Title and Content", true, &shapes)
}

fn two_content_layout() -> String {
    let shapes = format!(
        "{}{}{}",
        title_placeholder(2),
        content_placeholder(3, 1, MARGIN_X, COLUMN_WIDTH),
        content_placeholder(4, 2, MARGIN_X + COLUMN_WIDTH + COLUMN_GAP, COLUMN_WIDTH)
    );
    layout("twoObj", "Two Content", true, &shapes)
}

fn title_only_layout() -> String {
    layout("titleOnly", "Title Only", true, &title_placeholder(2))
}

/// The notes master: the slide's image above, the notes below (12 pt), on a portrait page.
pub fn notes_master() -> String {
    let levels: String = (0..5).map(|level| plain_level(level, 1200)).collect();
    format!(
        r#"{XML_HEADER}<p:notesMaster {NAMESPACES}><p:cSld><p:bg><p:bgRef idx="1001"><a:schemeClr val="bg1"/></p:bgRef></p:bg>{SP_TREE_START}<p:sp><p:nvSpPr><p:cNvPr id="2" name="Slide Image Placeholder 1"/><p:cNvSpPr><a:spLocks noGrp="1" noRot="1" noChangeAspect="1"/></p:cNvSpPr><p:nvPr><p:ph type="sldImg" idx="2"/></p:nvPr></p:nvSpPr><p:spPr>{image_xfrm}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:noFill/><a:ln w="12700"><a:solidFill><a:prstClr val="black"/></a:solidFill></a:ln></p:spPr><p:txBody><a:bodyPr vert="horz" lIns="91440" tIns="45720" rIns="91440" bIns="45720" rtlCol="0" anchor="ctr"/><a:lstStyle/><a:p><a:endParaRPr lang="en-US"/></a:p></p:txBody></p:sp><p:sp><p:nvSpPr><p:cNvPr id="3" name="Notes Placeholder 2"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="body" sz="quarter" idx="3"/></p:nvPr></p:nvSpPr><p:spPr>{notes_xfrm}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr><p:txBody><a:bodyPr vert="horz" lIns="91440" tIns="45720" rIns="91440" bIns="45720" rtlCol="0"/><a:lstStyle/><a:p><a:pPr lvl="0"/><a:r><a:rPr lang="en-US"/><a:t>Click to edit the notes</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld>{CLR_MAP}<p:notesStyle>{levels}</p:notesStyle></p:notesMaster>"#,
        image_xfrm = xfrm(381_000, 685_800, 6_096_000, 3_429_000),
        notes_xfrm = xfrm(685_800, 4_400_550, 5_486_400, 3_600_450),
    )
}

/// `ppt/presProps.xml`.
pub const PRES_PROPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:presentationPr xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>
"#;

/// `ppt/viewProps.xml`: open in the normal view.
pub const VIEW_PROPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:viewPr xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:normalViewPr><p:restoredLeft sz="15620"/><p:restoredTop sz="94660"/></p:normalViewPr><p:gridSpacing cx="76200" cy="76200"/></p:viewPr>
"#;

/// `ppt/tableStyles.xml`: tables carry their own formatting, so no styles are defined.
pub const TABLE_STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<a:tblStyleLst xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" def="{5C22544A-7EE6-4342-B048-85BDC9FD1C3A}"/>
"#;

/// Relationship type URIs.
pub mod rel {
    /// Base of the office document relationship types.
    const BASE: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/";
    /// Builds a full relationship type.
    pub fn of(kind: &str) -> String {
        format!("{BASE}{kind}")
    }
    /// The core properties (title, author).
    pub const CORE: &str = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties";
}

/// Content types of the parts.
pub mod content_type {
    /// `presentation.xml`.
    pub const PRESENTATION: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml";
    /// A slide.
    pub const SLIDE: &str = "application/vnd.openxmlformats-officedocument.presentationml.slide+xml";
    /// A layout.
    pub const LAYOUT: &str = "application/vnd.openxmlformats-officedocument.presentationml.slideLayout+xml";
    /// The master.
    pub const MASTER: &str = "application/vnd.openxmlformats-officedocument.presentationml.slideMaster+xml";
    /// The notes master.
    pub const NOTES_MASTER: &str = "application/vnd.openxmlformats-officedocument.presentationml.notesMaster+xml";
    /// A notes slide.
    pub const NOTES_SLIDE: &str = "application/vnd.openxmlformats-officedocument.presentationml.notesSlide+xml";
    /// A theme.
    pub const THEME: &str = "application/vnd.openxmlformats-officedocument.theme+xml";
    /// `presProps.xml`.
    pub const PRES_PROPS: &str = "application/vnd.openxmlformats-officedocument.presentationml.presProps+xml";
    /// `viewProps.xml`.
    pub const VIEW_PROPS: &str = "application/vnd.openxmlformats-officedocument.presentationml.viewProps+xml";
    /// `tableStyles.xml`.
    pub const TABLE_STYLES: &str = "application/vnd.openxmlformats-officedocument.presentationml.tableStyles+xml";
    /// A chart.
    pub const CHART: &str = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml";
    /// `docProps/core.xml`.
    pub const CORE: &str = "application/vnd.openxmlformats-package.core-properties+xml";
    /// `docProps/app.xml`.
    pub const APP: &str = "application/vnd.openxmlformats-officedocument.extended-properties+xml";
}
