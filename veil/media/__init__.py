"""Media I/O at the edge of Veil: probe, decode and encode with PyAV/FFmpeg; still images with Pillow.

Everything above this layer sees RGB frames in stored orientation, exact
``Fraction`` frame rates and ``veil.errors.MediaError`` subclasses, never a
PyAV or Pillow object or exception.
"""

from veil.frames import RGBFrame
from veil.media.audio import SoundEdit
from veil.media.formats import MEDIA_SUFFIXES
from veil.media.image import ImageFormat, image_orientation, read_image, write_image
from veil.media.probe import AudioStream, MediaInfo, media_summary, probe
from veil.media.video import EncodeOptions, VideoCodec, VideoFrame, iter_frames, transcode_video

__all__ = [
    "MEDIA_SUFFIXES",
    "AudioStream",
    "EncodeOptions",
    "ImageFormat",
    "MediaInfo",
    "RGBFrame",
    "SoundEdit",
    "VideoCodec",
    "VideoFrame",
    "image_orientation",
    "iter_frames",
    "media_summary",
    "probe",
    "read_image",
    "transcode_video",
    "write_image",
]
