"""Content negotiation: the API speaks JSON whatever the Accept header asks for."""

from rest_framework.negotiation import DefaultContentNegotiation


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """Parse as DRF does, but always answer with the JSON renderer.

    SWR clients do not negotiate; answering 406 to an odd Accept header would
    only break them.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
