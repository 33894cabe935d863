"""Without BPM_TEST_CLOCK the clock endpoint does not exist."""


def test_clock_endpoint_is_404_when_the_test_clock_is_off(people):
    response = people["admin"].post("/api/v1/test/clock", json={"now": "2030-01-01T00:00:00+00:00"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
