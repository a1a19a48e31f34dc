#!/usr/bin/env python3
"""Writes the XLSX importer fixtures next to this script (run once with /usr/bin/python3; files are committed).

multi.xlsx and date1904.xlsx come from openpyxl; the rest are written byte by byte with zipfile so that
every XML feature (namespace prefixes, rich text, inline strings, error cells, gaps) and every hostile shape
(zip bomb, missing parts, broken XML, .xls, encrypted) is exactly what the tests expect.
"""
import datetime as dt
import os
import zipfile

import openpyxl
from openpyxl.utils.datetime import CALENDAR_MAC_1904

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def openpyxl_fixtures():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "People"
    ws.append(["name", "age", "score", "active", "joined", "seen_at", "note", "mixed", "days"])
    ws.append(["Ann", 34, 1.5, True, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), "hello", 1, 3])
    ws.append(["Bob", 41, 2, False, dt.date(1999, 12, 31), dt.datetime(2000, 2, 29, 23, 59, 59), None, "x", 4])
    ws.append(["C\u00e9", None, 3.25, True, dt.date(1900, 3, 1), None, "third", True, 5])
    for row in ws.iter_rows(min_row=2, max_row=4):
        row[4].number_format = "mm-dd-yy"  # built-in format 14
        row[8].number_format = '0 "days"'  # quoted text: not a date
    rep = wb.create_sheet("Report")
    rep.append(["Quarterly report"])
    rep.append(["region", "sales"])
    rep.append(["north", 10])
    rep.append(["south", 20.5])
    nums = wb.create_sheet("Numbers")
    nums.append([1, 2])
    nums.append([3, 4])
    wb.save(path("multi.xlsx"))

    wb = openpyxl.Workbook()
    wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.append(["when", "n"])
    ws.append([dt.datetime(2024, 1, 2, 12, 0, 0), 1])
    ws.append([dt.date(1904, 1, 1), 2])
    wb.save(path("date1904.xlsx"))


CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="xml" ContentType="application/xml"/></Types>')
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def workbook_xml(sheets, date1904=False):
    pr = '<workbookPr date1904="1"/>' if date1904 else "<workbookPr/>"
    items = "".join(f'<sheet name="{n}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, n in enumerate(sheets))
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            f'xmlns:r="{REL}">{pr}<sheets>{items}</sheets></workbook>')


def rels_xml(targets):
    items = "".join(f'<Relationship Id="rId{i + 1}" Type="{REL}/worksheet" Target="{t}"/>'
                    for i, t in enumerate(targets))
    items += f'<Relationship Id="rIdS" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
    items += f'<Relationship Id="rIdT" Type="{REL}/styles" Target="/xl/styles.xml"/>'
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'{items}</Relationships>')


STYLES = ('<?xml version="1.0" encoding="UTF-8"?>'
          '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<numFmts count="3"><numFmt numFmtId="164" formatCode="&quot;Day&quot; d mmm yyyy"/>'
          '<numFmt numFmtId="165" formatCode="&quot;yyyy&quot; 0.00"/>'
          '<numFmt numFmtId="166" formatCode="[Red]#,##0.00_);[Blue]\\(#,##0.00\\)"/></numFmts>'
          '<cellXfs count="5"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/>'
          '<xf numFmtId="166"/></cellXfs></styleSheet>')

SST = ('<?xml version="1.0" encoding="UTF-8"?>'
       '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="5" uniqueCount="5">'
       '<si><t>id</t></si><si><t>label</t></si>'
       '<si><r><rPr><b/></rPr><t>Bold</t></r><r><t xml:space="preserve"> and plain</t></r>'
       '<rPh sb="0" eb="1"><t>PHONETIC</t></rPh></si>'
       '<si><t>when</t></si><si><t>a &amp; b &lt;c&gt;</t></si></sst>')

# Namespace prefix x:, gaps, cells without r, inline strings, formula string results, booleans, dates by
# built-in and custom formats, serials around the 1900 leap-year bug, an empty styled row, rowBreaks.
HANDMADE_SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<x:dimension ref="A1:F6"/><x:sheetData>'
    '<x:row r="1"><x:c r="A1" t="s"><x:v>0</x:v></x:c><x:c r="B1" t="s"><x:v>1</x:v></x:c>'
    '<x:c r="C1" t="s"><x:v>3</x:v></x:c><x:c r="D1" t="inlineStr"><x:is><x:t>flag</x:t></x:is></x:c>'
    '<x:c r="E1" t="inlineStr"><x:is><x:t>money</x:t></x:is></x:c><x:c r="F1" t="inlineStr"><x:is><x:t>formula</x:t></x:is></x:c></x:row>'
    '<x:row r="2"><x:c r="A2"><x:v>1</x:v></x:c><x:c r="B2" t="s"><x:v>2</x:v></x:c>'
    '<x:c r="C2" s="1"><x:v>59</x:v></x:c><x:c r="D2" t="b"><x:v>1</x:v></x:c><x:c r="E2" s="3"><x:v>1.25</x:v></x:c>'
    '<x:c r="F2" t="str"><x:f>A2&amp;"x"</x:f><x:v>1x</x:v></x:c></x:row>'
    '<x:row r="3"><x:c><x:v>2</x:v></x:c><x:c t="inlineStr"><x:is><x:r><x:t>in</x:t></x:r><x:r><x:t>line</x:t></x:r></x:is></x:c>'
    '<x:c s="1"><x:v>60</x:v></x:c><x:c t="b"><x:v>0</x:v></x:c><x:c s="4"><x:v>-3</x:v></x:c></x:row>'
    '<x:row r="4" spans="1:6"><x:c r="A4" s="1"/><x:c r="C4" s="2"/></x:row>'
    '<x:row r="5"><x:c r="A5"><x:v>3</x:v></x:c><x:c r="B5" t="s"><x:v>4</x:v></x:c>'
    '<x:c r="C5" s="2"><x:v>45292.75</x:v></x:c><x:c r="F5" t="str"><x:f>NA()</x:f><x:v></x:v></x:c></x:row>'
    '<x:row r="7"><x:c r="A7"><x:v>4</x:v></x:c><x:c r="C7" s="1"><x:v>61</x:v></x:c></x:row>'
    '</x:sheetData><x:rowBreaks count="1"><x:brk id="3"/></x:rowBreaks></x:worksheet>')

ERRORS_SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="B1" t="inlineStr"><is><t>b</t></is></c></row>'
    '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>10</v></c></row>'
    '<row r="3"><c r="A3"><v>2</v></c><c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>'
    '<row r="4"><c r="A4"><v>3</v></c><c r="B4" t="inlineStr"><is><t>oops</t></is></c></row>'
    '<row r="5"><c r="A5"><v>4</v></c><c r="B5"><v>40</v></c></row>'
    '</sheetData></worksheet>')


def write_zip(name, parts, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path(name), "w", compression) as z:
        for part, data in parts.items():
            z.writestr(part, data)


def base_parts(sheets, sheet_xml, date1904=False):
    parts = {"[Content_Types].xml": CONTENT_TYPES,
             "xl/workbook.xml": workbook_xml(sheets, date1904),
             "xl/_rels/workbook.xml.rels": rels_xml([f"worksheets/sheet{i + 1}.xml" for i in range(len(sheets))]),
             "xl/styles.xml": STYLES, "xl/sharedStrings.xml": SST}
    for i, x in enumerate(sheet_xml):
        parts[f"xl/worksheets/sheet{i + 1}.xml"] = x
    return parts


def handmade_fixtures():
    write_zip("handmade.xlsx", base_parts(["Data", "Errors"], [HANDMADE_SHEET, ERRORS_SHEET]))
    p = base_parts(["Data"], [HANDMADE_SHEET])
    del p["xl/workbook.xml"]
    write_zip("missing_workbook.xlsx", p)
    p = base_parts(["Data"], [HANDMADE_SHEET])
    del p["xl/worksheets/sheet1.xml"]
    write_zip("missing_sheet_part.xlsx", p)
    write_zip("bad_sheet_xml.xlsx", base_parts(["Data"], [ERRORS_SHEET.replace("<v>10</v>", "<v>10</w>")]))
    p = base_parts(["Data"], [ERRORS_SHEET])
    p["xl/sharedStrings.xml"] = SST.replace("</sst>", "<si><t>unclosed</si></sst>")
    write_zip("bad_sst_xml.xlsx", p)
    write_zip("bad_workbook_xml.xlsx", {**base_parts(["Data"], [ERRORS_SHEET]), "xl/workbook.xml": "<workbook><sheets>"})
    # A zip bomb: 64 MB of blanks inside the sheet compress about 1000:1.
    bomb = ERRORS_SHEET.replace("<sheetData>", "<sheetData>" + " " * (64 << 20))
    write_zip("bomb.xlsx", base_parts(["Data"], [bomb]))
    # Bad cell references and rows out of order.
    write_zip("bad_ref.xlsx", base_parts(["Data"], [ERRORS_SHEET.replace('r="B2"', 'r="B99"')]))
    with open(path("handmade.xlsx"), "rb") as f:
        data = f.read()
    with open(path("truncated.xlsx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(path("not_zip.xlsx"), "wb") as f:
        f.write(b"name,age\nann,3\n")
    with open(path("garbage_zip.xlsx"), "wb") as f:
        f.write(b"PK\x03\x04" + bytes(range(256)) * 8)
    ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + b"\x00" * 504
    with open(path("old.xls"), "wb") as f:
        f.write(ole + "Workbook".encode("utf-16-le") + b"\x00" * 1024)
    with open(path("encrypted.xlsx"), "wb") as f:
        f.write(ole + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 64 +
                "EncryptedPackage".encode("utf-16-le") + b"\x00" * 1024)
    with open(path("empty.xlsx"), "wb") as f:
        pass


if __name__ == "__main__":
    openpyxl_fixtures()
    handmade_fixtures()
