"""The URLs of rung `django` (bench/ingest/ladder_django.py): one DRF view on `/s/`."""

from __future__ import annotations

from django.db import connection
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.ingest.ladder_app import INSERT_WITH_DATA_SQL, encoded, scrubbed
from recordings.capture.endpoints import (
    OK_BODY,
    CaptureBodyParser,
    decompression_budget,
)
from recordings.ingest.parse import parse_snapshot_request


class InrowApi(APIView):
    """Rung `inrow` as a DRF view, with the capture endpoints' policy."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [CaptureBodyParser]

    def post(self, request: Request) -> Response:
        batches = parse_snapshot_request(
            request.data, max_decompressed=decompression_budget(request)
        )
        with connection.cursor() as cursor:
            for batch in batches:
                events = scrubbed(batch)
                data = encoded(events)
                cursor.execute(
                    INSERT_WITH_DATA_SQL,
                    [batch.uuid, batch.session_id, len(events), len(data), data],
                )
        return Response(OK_BODY)


urlpatterns = [path("s/", InrowApi.as_view())]
