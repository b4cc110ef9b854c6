"""The reference server of the personalize benchmark: a trivial FastAPI POST route.

It parses a body of the same shape as ``/v1/personalize`` into a pydantic model and answers a
small JSON object, under the same uvicorn (uvloop + httptools) as tailorbot, so the ratio of
tailorbot's CPU per request to this one's says what tailorbot adds, on any machine.

    .venv/bin/python -m uvicorn reference_app:app --app-dir benchmarks --port 8001
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field


class Context(BaseModel):
    channel: str = "chat"
    language: str | None = None


class Request(BaseModel):
    user_id: str = Field(min_length=1, max_length=128)
    session_id: str = Field(min_length=1, max_length=128)
    message: str = Field(min_length=1)
    context: Context = Field(default_factory=Context)


class Response(BaseModel):
    user_id: str
    text: str


app = FastAPI()


@app.post("/v1/personalize", response_model=Response)
async def personalize(request: Request) -> Response:
    return Response(user_id=request.user_id, text=request.message[:20])
