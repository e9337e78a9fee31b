"""Every data/demo table opens in pandas and pyarrow, with the hub's Arrow types."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, shared_path

DEMO = REPO / "data" / "demo"
TABLES = sorted(DEMO.rglob("*.parquet"))


def test_the_demo_has_every_table():
    names = {p.parent.parent.name for p in TABLES}
    assert {"conversations", "tracks", "users", "track_embeddings", "user_embeddings"} <= names


@pytest.mark.parametrize("path", TABLES, ids=[str(p.relative_to(DEMO)) for p in TABLES])
def test_demo_table_opens_in_pandas_and_pyarrow(path):
    import pandas as pd

    frame = pd.read_parquet(path)
    table = pq.read_table(path)
    assert len(frame) == table.num_rows > 0
    assert list(frame.columns) == table.schema.names

    def no_view_or_large(t):
        if pa.types.is_string_view(t) or pa.types.is_large_list(t) or pa.types.is_binary_view(t):
            return False
        if pa.types.is_list(t):
            return no_view_or_large(t.value_type)
        if pa.types.is_struct(t):
            return all(no_view_or_large(t.field(i).type) for i in range(t.num_fields))
        return True

    for field in table.schema:
        assert no_view_or_large(field.type), f"{path.name}: {field.name} is {field.type}"


def test_demo_schemas_equal_the_hub_samples():
    samples = {
        "conversations/data/test-00000-of-00001.parquet": "conversations-test-sample.parquet",
        "conversations/data/train-00000-of-00001.parquet": "conversations-test-sample.parquet",
        "conversations/data/blind-00000-of-00001.parquet": "blind-a-sample.parquet",
        "tracks/data/all_tracks-00000-of-00001.parquet": "tracks-sample.parquet",
    }
    for ours, sample in samples.items():
        real = pq.read_schema(shared_path(f"fixtures/talkplay/{sample}"))
        mine = pq.read_schema(DEMO / ours)
        # The tracks sample lacks the hub's trailing duration and ISRC.
        for i, field in enumerate(real):
            assert mine.field(i).name == field.name, ours
            assert mine.field(i).type == field.type, (ours, field.name)
        assert all(name in ("duration", "ISRC") for name in mine.names[len(real):])
    users = pq.read_schema(DEMO / "users/data/all_users-00000-of-00001.parquet")
    assert users.field("age").type == pa.int64() and users.field("user_id").type == pa.string()
    emb = pq.read_schema(DEMO / "track_embeddings/data/all_tracks-00000-of-00001.parquet")
    assert all(f.type == pa.list_(pa.float32()) for f in emb if f.name != "track_id")
