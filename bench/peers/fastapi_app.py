"""The design documents' Python service (FastAPI), reproduced as a benchmark peer.

It serves the four routes of the service outpost replaces, unchanged:
    POST /data {"id": "sensor_1", "value": 42.5} -> 201 {"status":"success","message":"Data received!"}
    GET  /data                                    -> {"sensor_1": 42.5, ...}  (latest value per sensor)
    POST /status?device_id=X&status=Y             -> {"status":"success"}
    GET  /status                                  -> {"X": "Y", ...}
plus POST /v1/readings (one reading or an array, validated as outpost's API contract
says) -> 201 {"accepted": N}, so that the benchmark sends every server the same requests.

Everything lives in process memory (two dicts): nothing is written to disk, so an
acknowledged reading does NOT survive a crash. outpost acknowledges only after commit.

Run (Debian's packages): uvicorn --app-dir bench/peers fastapi_app:app --workers 1
"""
import math
from typing import Dict, List, Optional, Union

from fastapi import FastAPI
from pydantic import BaseModel, Extra, constr, validator

app = FastAPI()
data_store: Dict[str, float] = {}
status_store: Dict[str, str] = {}


class Data(BaseModel):
    id: str
    value: float


class Reading(BaseModel):
    """A reading as docs/api.md defines it; unknown fields are rejected (422)."""

    sensor: constr(min_length=1, max_length=128, regex=r"^[A-Za-z0-9_.:/-]+$")
    value: float
    ts: Optional[int] = None

    class Config:
        extra = Extra.forbid

    @validator("value")
    def value_finite(cls, v):
        if not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    @validator("ts")
    def ts_range(cls, v):
        if v is not None and not 0 <= v <= 253402300799999:
            raise ValueError("ts out of range")
        return v


@app.post("/data", status_code=201)
async def receive_data(data: Data):
    data_store[data.id] = data.value
    return {"status": "success", "message": "Data received!"}


@app.get("/data")
async def get_data():
    return data_store


@app.post("/status")
async def update_status(device_id: str, status: str):
    status_store[device_id] = status
    return {"status": "success"}


@app.get("/status")
async def get_status():
    return status_store


@app.post("/v1/readings", status_code=201)
async def post_readings(body: Union[List[Reading], Reading]):
    readings = body if isinstance(body, list) else [body]
    for r in readings:
        data_store[r.sensor] = r.value
    return {"accepted": len(readings)}
