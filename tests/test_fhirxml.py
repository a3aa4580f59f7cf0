"""FHIR XML ↔ JSON: typed primitives, arrays, primitive extensions, narrative, contained, order."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from fhir_dnacpr.fhirxml import parse_xml, to_xml

PATIENT_XML = b"""<Patient xmlns="http://hl7.org/fhir">
  <id value="p1"/>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Hi</p></div></text>
  <contained><Practitioner><id value="gp"/></Practitioner></contained>
  <active value="true"/>
  <name><given value="A"/><given id="g2" value="B">
    <extension url="http://example.org/x"><valueInteger value="3"/></extension></given></name>
  <birthDate value="2000-01-01"/>
  <multipleBirthInteger value="2"/>
  <generalPractitioner><reference value="#gp"/></generalPractitioner>
</Patient>"""


def test_parse_types_arrays_and_primitive_extensions():
    resource, issues = parse_xml(PATIENT_XML)
    assert issues == []
    assert resource["active"] is True
    assert resource["multipleBirthInteger"] == 2
    assert resource["name"][0]["given"] == ["A", "B"]
    assert resource["name"][0]["_given"] == [
        None,
        {"id": "g2", "extension": [{"url": "http://example.org/x", "valueInteger": 3}]},
    ]
    assert resource["contained"][0] == {"resourceType": "Practitioner", "id": "gp"}
    assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')


def test_round_trip_json_xml_json():
    resource, _ = parse_xml(PATIENT_XML)
    again, issues = parse_xml(to_xml(resource))
    assert issues == [] and again == resource


def test_xml_output_follows_definition_order():
    xml = to_xml({"resourceType": "Patient", "gender": "male", "active": True, "id": "x"})
    root = etree.fromstring(xml)
    assert [etree.QName(c).localname for c in root] == ["id", "active", "gender"]


def test_unknown_content_reported_not_crashing():
    resource, issues = parse_xml(
        b'<Patient xmlns="http://hl7.org/fhir" foo="1"><bogus/>text<active value="true"/></Patient>'
    )
    assert resource == {"resourceType": "Patient", "active": True}
    assert [i.message_id for i in issues] == [
        "UNDEFINED_ATTRIBUTE__ON__FOR_TYPE__PROPERTIES__",
        "Text_should_not_be_present",
        "Undefined_element_",
    ]


def test_malformed_xml_is_one_fatal_issue():
    resource, issues = parse_xml(b"<Patient xmlns='http://hl7.org/fhir'><active value='true'></Patient>")
    assert resource is None and [i.severity.value for i in issues] == ["fatal"]


def test_strict_serialiser_refuses_unknown_properties():
    try:
        to_xml({"resourceType": "Patient", "nonsense": 1})
    except ValueError as exc:
        assert "nonsense" in str(exc)
    else:
        raise AssertionError("unknown property silently dropped")


def test_decimals_keep_their_digits_when_asked():
    xml = b"""<Observation xmlns="http://hl7.org/fhir"><status value="final"/>
      <code><text value="x"/></code><valueQuantity><value value="1.50"/></valueQuantity></Observation>"""
    exact, _ = parse_xml(xml, exact_decimals=True)
    assert exact["valueQuantity"]["value"] == Decimal("1.50")
    assert str(exact["valueQuantity"]["value"]) == "1.50"
    assert b'value="1.50"' in to_xml(exact)
    default, _ = parse_xml(xml)
    assert default["valueQuantity"]["value"] == 1.5 and isinstance(default["valueQuantity"]["value"], float)


def test_elements_out_of_definition_order_are_reported_with_a_fhirpath_location():
    resource, issues = parse_xml(
        b'<Patient xmlns="http://hl7.org/fhir"><active value="true"/><id value="p1"/>'
        b'<name><given value="A"/><family value="B"/></name></Patient>'
    )
    assert resource == {
        "resourceType": "Patient",
        "id": "p1",
        "active": True,
        "name": [{"family": "B", "given": ["A"]}],
    }
    assert [(i.message_id, i.location) for i in issues] == [
        ("Validation_VAL_Profile_OutOfOrder", "Patient.id"),
        ("Validation_VAL_Profile_OutOfOrder", "Patient.name[0].family"),
    ]


def test_stray_text_is_reported_without_quoting_it():
    _resource, issues = parse_xml(
        b'<Patient xmlns="http://hl7.org/fhir">Jane Smith, DNACPR<active value="true"/></Patient>'
    )
    assert [i.message_id for i in issues] == ["Text_should_not_be_present"]
    assert "Jane" not in issues[0].message
