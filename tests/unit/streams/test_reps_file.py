"""The reps file: accepted rows, and refusals that name the line and the reason."""

import pytest

from streams.reps import RepsFileError, read_reps_file


def write(tmp_path, text):
    path = tmp_path / "reps.csv"
    path.write_text(text)
    return path


def test_rows_are_read_with_extra_columns_ignored(tmp_path):
    path = write(tmp_path, "rep_id,name,team_id,region_id\nr-1,Ann,t-a,emea\nr-2,Bo,t-b,amer\n")
    assert read_reps_file(path) == [("r-1", "t-a", "emea"), ("r-2", "t-b", "amer")]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("rep_id,team_id\nr-1,t-a\n", 1, "missing column(s) region_id"),
        ("rep_id,team_id,region_id\nr-1,t-a,emea\nr-2,,amer\n", 3, "empty team_id"),
        ("rep_id,team_id,region_id\nr-1,t-a,emea\nr-1,t-b,emea\n", 3, "already on line 2"),
    ],
)
def test_a_bad_file_is_refused_with_line_and_reason(tmp_path, text, line, reason):
    with pytest.raises(RepsFileError) as info:
        read_reps_file(write(tmp_path, text))
    assert info.value.line == line
    assert reason in str(info.value)
    assert f":{line}:" in str(info.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(RepsFileError, match="cannot open"):
        read_reps_file(tmp_path / "nope.csv")
