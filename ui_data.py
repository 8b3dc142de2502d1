"""The Train page's own-pictures option: a folder or a zip uploaded from the browser (Streamlit glue).

What a session uploaded is kept in its session state only, so another student never sees it in
their chooser; the pictures themselves are stored by `vae.student_data` (checked, decoded once,
named by their content) so the models trained on them can load them on every page.
"""

from __future__ import annotations

import streamlit as st

from vae.datasets import FOLDER_COLORS, FOLDER_SIZES
from vae.student_data import StudentPictures, UploadError, UploadLimits, read_zip, store_upload

UPLOADS_KEY = "student_uploads"  # this session's uploads: {key: StudentPictures}, newest last
CHOICE_KEY = "upload_choice"


def _names_in_use() -> list[str]:
    """Data set names that saved models and known runs use: their uploads are never pruned."""
    import ui
    from vae.jobs import shared_manager

    names = [summary.config["dataset"]["name"] for summary in ui.checkpoint_summaries() if summary.config]
    names += [job.train_config.dataset for job in shared_manager().jobs()]
    return names + [picture.dataset_name() for picture in st.session_state.get(UPLOADS_KEY, {}).values()]


def _limits() -> UploadLimits:
    """The operator's upload limits: secrets.toml over LATENT_LAB_UPLOAD_*, like every other setting."""
    import ui

    return UploadLimits.from_settings(ui.settings())


def _store(kind: str, uploaded) -> StudentPictures:
    limits = _limits()
    if kind == "zip":
        files = read_zip(uploaded.getvalue(), limits)
        title = uploaded.name.rsplit(".", 1)[0]
    else:
        files = [(file.name, file.getvalue()) for file in uploaded]
        title = "pictures"
    return store_upload(files, title, limits=limits, in_use=_names_in_use())


def upload_chooser() -> str | None:
    """Widgets: upload a folder or a zip, pick one of this session's uploads, size and colour.

    Returns the data set name to train on (`upload:<key>?...`), or None while there is none.
    """
    uploads: dict[str, StudentPictures] = st.session_state.setdefault(UPLOADS_KEY, {})
    limits = _limits()
    kind = st.radio("Your pictures, as", ["folder", "zip"], horizontal=True, key="upload_kind",
                    format_func={"folder": "a folder", "zip": "a zip file"}.get)
    layout = "One subfolder per label (cats/, dogs/, ...), or all pictures in one folder for a single label."
    if kind == "folder":
        uploaded = st.file_uploader("A folder of pictures", accept_multiple_files="directory", key="upload_folder",
                                    help=layout)
    else:
        uploaded = st.file_uploader("A zip of pictures", type=["zip"], key="upload_zip",
                                    help=layout + " Zipped the same way.")
    st.caption(f"At most {limits.max_files:,} pictures, {limits.max_megabytes} MB together, "
               f"{limits.max_image_megapixels} million pixels each. Only you see your uploads here; a model you train "
               "on them can be opened by everyone.")
    if st.button("Use these pictures", key="upload_use", disabled=not uploaded):
        try:
            with st.spinner("Checking and storing your pictures…"):
                picture = _store(kind, uploaded)
        except UploadError as error:
            st.error(str(error))
        else:
            uploads.pop(picture.key, None)
            uploads[picture.key] = picture
            st.session_state[CHOICE_KEY] = picture.key
    if not uploads:
        st.info("Upload a folder or a zip of your pictures, then press **Use these pictures**.")
        return None
    keys = list(reversed(uploads))
    if st.session_state.get(CHOICE_KEY) not in keys:
        st.session_state[CHOICE_KEY] = keys[0]
    choice, size_column, colour_column = st.columns([4, 1, 1])
    key = choice.selectbox("Pictures to train on", keys, format_func=lambda k: uploads[k].summary, key=CHOICE_KEY)
    size = size_column.selectbox("Resize to", FOLDER_SIZES, key="upload_size", format_func=lambda s: f"{s}×{s}")
    colour = colour_column.selectbox("Colour", FOLDER_COLORS, key="upload_colour")
    for note in uploads[key].notes:
        st.caption(note)
    return uploads[key].dataset_name(size, colour)
