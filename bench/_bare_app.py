"""The baseline of bench/load.py: a bare FastAPI endpoint, served the same way as KetaCare."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
def bare() -> dict[str, str]:
    return {"status": "ok"}
