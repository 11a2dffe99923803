// The workspace's progressive enhancement: everything works without it.
import { initAll } from '/govuk/govuk-frontend.min.js'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()

// The decision form: outcomes that do not fit the level chosen are marked (the server refuses
// them anyway, unless a team manager gives an exception reason).
const form = document.querySelector('form[data-fits]')
if (form) {
  const mark = () => {
    const level = form.querySelector('input[name=level]:checked')
    for (const item of form.querySelectorAll('[data-levels]')) {
      const fits = !level || item.dataset.levels.split(' ').includes(level.value)
      item.classList.toggle('sh-unfit', !fits)
    }
  }
  for (const input of form.querySelectorAll('input[name=level]')) input.addEventListener('change', mark)
  mark()
}
