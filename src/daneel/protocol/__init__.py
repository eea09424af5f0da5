"""Wire types and codecs: Seldon's v1 SeldonMessage and the Open Inference Protocol (v2).

numpy in, numpy out; no I/O happens here.
"""

from daneel.protocol.payload import Payload

__all__ = ["Payload"]
